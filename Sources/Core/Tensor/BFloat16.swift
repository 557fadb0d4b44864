import COneDNN

/// Rounding fp32 to bfloat16 (the upper 16 bits of an IEEE float32) to nearest, ties to
/// even, NaN kept a (quiet) NaN. Every bf16 operand of the mixed-precision path goes through
/// these functions, on every machine: the hardware and the emulated paths multiply the same
/// rounded values (docs/DESIGN.md §9.3).
public enum BFloat16 {
    /// The bf16 bits of `value`, rounded to nearest even.
    @inline(__always)
    public static func bits(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        if bits & 0x7FFF_FFFF > 0x7F80_0000 { return UInt16(truncatingIfNeeded: bits >> 16) | 0x0040 }
        return UInt16(truncatingIfNeeded: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16)
    }

    /// `value` rounded to the nearest bf16, as a Float (exactly representable in bf16).
    @inline(__always)
    public static func rounded(_ value: Float) -> Float {
        Float(bitPattern: UInt32(bits(value)) << 16)
    }

    /// The fp32 value of bf16 `bits`.
    @inline(__always)
    public static func value(_ bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }

    /// Rounds `count` values to bf16 bits (vectorised C: `vavl_round_to_bf16`).
    @inline(__always)
    public static func round(_ source: UnsafePointer<Float>, into target: UnsafeMutablePointer<UInt16>, count: Int) {
        vavl_round_to_bf16(source, target, count)
    }

    /// Rounds `count` values to bf16 and stores them back as Floats (the emulated path's
    /// operands).
    @inline(__always)
    public static func round(_ source: UnsafePointer<Float>, intoFloats target: UnsafeMutablePointer<Float>, count: Int) {
        vavl_round_to_bf16_floats(source, target, count)
    }
}
