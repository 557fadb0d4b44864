// Seeded, fast random numbers for the synthetic corpora. Not for cryptography.

/// xoshiro256** (Blackman & Vigna 2018), seeded through SplitMix64 as its authors advise.
/// About a nanosecond per 64-bit output.
public struct Xoshiro256: RandomNumberGenerator, Sendable {
    @usableFromInline var s0, s1, s2, s3: UInt64

    public init(seed: UInt64) {
        var mixer = SplitMix64(seed: seed)
        s0 = mixer.next(); s1 = mixer.next(); s2 = mixer.next(); s3 = mixer.next()
    }

    /// A generator for a named stream of `seed`: streams with different keys are independent,
    /// and the same (seed, key) always gives the same numbers.
    public init(seed: UInt64, key: String) {
        self.init(seed: seed ^ fnv1a(key) &* 0x9E37_79B9_7F4A_7C15)
    }

    @inline(__always)
    public mutating func next() -> UInt64 {
        let result = rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = rotl(s3, 45)
        return result
    }

    @inline(__always) private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// A uniform Double in [0, 1) with 53 random bits.
    @inline(__always)
    public mutating func uniform() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// A uniform Double in [low, high).
    @inline(__always)
    public mutating func uniform(_ low: Double, _ high: Double) -> Double {
        low + (high - low) * uniform()
    }

    /// An exact standard normal deviate (Box–Muller), for the few per-utterance draws.
    public mutating func normal() -> Double {
        let u1 = 1 - uniform()  // (0, 1]
        let u2 = uniform()
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }

    /// A cheap approximately standard normal deviate for bulk noise: the Irwin–Hall sum of
    /// four 16-bit uniforms from one 64-bit output, centred and scaled to unit variance
    /// (bounded by ±2√3; excess kurtosis −0.3).
    @inline(__always)
    public mutating func fastNormal() -> Float {
        let x = next()
        let sum = (x & 0xFFFF) + ((x >> 16) & 0xFFFF) + ((x >> 32) & 0xFFFF) + (x >> 48)
        return (Float(Int32(truncatingIfNeeded: sum)) - 131_070) * fastNormalScale
    }
}

/// √3 / 65536: makes the sum of four 16-bit uniforms unit-variance.
@usableFromInline let fastNormalScale: Float = 1.7320508 / 65536

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
