#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Seeded randomness shared by every module: one mixing function, one string hash and one
// sequential generator, so that a (seed, name) pair means the same stream everywhere.
// None of this is for cryptography.

/// SplitMix64's output function (Steele, Lea & Flood 2014): a bijective 64-bit mix, used to
/// seed streams and as the counter-based generator behind dropout masks.
@inlinable @inline(__always)
public func mix64(_ value: UInt64) -> UInt64 {
    var z = value &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

/// FNV-1a over the UTF-8 bytes of a string: the same in every process, unlike Swift's
/// per-process seeded `Hasher`. Its low bits mix poorly; ``stableHash(_:)`` mixes them.
/// (Synthetic corpora key their streams with the plain FNV-1a value, so corpora written by
/// earlier versions are generated again bit for bit.)
public func fnv1a(_ text: String) -> UInt64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in text.utf8 {
        hash ^= UInt64(byte)
        hash = hash &* 0x0000_0100_0000_01B3
    }
    return hash
}

/// The stable 64-bit hash of a string: ``fnv1a(_:)`` passed through ``mix64``. Parameter,
/// layer and stream names key random streams with it (initialisation, dropout masks).
public func stableHash(_ text: String) -> UInt64 { mix64(fnv1a(text)) }

/// SplitMix64 as a sequential generator: one 64-bit state advanced by the golden-ratio
/// increment and passed through ``mix64``. Used for initialisation, sampling and to seed
/// larger generators.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    @inline(__always)
    public mutating func next() -> UInt64 {
        let value = mix64(state)
        state &+= 0x9E37_79B9_7F4A_7C15
        return value
    }

    /// Uniform in [low, high), from 53 random bits.
    public mutating func uniform(_ low: Float, _ high: Float) -> Float {
        let unit = Double(next() >> 11) * 0x1p-53
        return Float(Double(low) + (Double(high) - Double(low)) * unit)
    }

    /// Standard normal (Box–Muller in Double precision).
    public mutating func normal() -> Float {
        let u1 = max(Double(next() >> 11) * 0x1p-53, 0x1p-60)
        let u2 = Double(next() >> 11) * 0x1p-53
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }
}
