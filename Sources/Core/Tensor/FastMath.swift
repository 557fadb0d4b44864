/// e^x and σ(x) for the hot elementwise loops (Swish, GLU, softmax): the Cephes
/// single-precision scheme — x = n·ln2 + r with |r| ≤ ln2/2, a degree-5 polynomial for e^r,
/// 2ⁿ put into the exponent bits. Written as branch-free scalar arithmetic with no library
/// calls so that the loops calling it vectorise. Relative error ≤ 2 ulp on the clamped
/// range [−87.3, 88.7], where e^x stays a normal float.
public enum FastMath {
    @inline(__always)
    public static func exp(_ x: Float) -> Float {
        let x0 = x < -87.3 ? -87.3 : (x > 88.7 ? 88.7 : x)
        let v = x0 * 1.442_695_040_888_963_4 + 0.5
        let truncated = Float(Int32(v))
        let n = v < truncated ? truncated - 1 : truncated  // floor(v)
        var r = x0 - n * 0.693_359_375
        r = r - n * -2.121_944_400_546_905_8e-4
        var y: Float = 1.987_569_150_0e-4
        y = y * r + 1.398_199_950_7e-3
        y = y * r + 8.333_451_907_3e-3
        y = y * r + 4.166_579_589_4e-2
        y = y * r + 1.666_666_545_9e-1
        y = y * r + 5.000_000_120_1e-1
        y = y * (r * r) + r + 1
        let exponent = (Int32(n) &+ 127) &<< 23
        return y * Float(bitPattern: UInt32(bitPattern: exponent))
    }

    @inline(__always)
    public static func sigmoid(_ x: Float) -> Float { 1 / (1 + exp(-x)) }

    /// Swish (SiLU): x σ(x).
    @inline(__always)
    public static func swish(_ x: Float) -> Float { x * sigmoid(x) }

    /// d swish / dx = σ(x) + x σ(x)(1 − σ(x)).
    @inline(__always)
    public static func swishDerivative(_ x: Float) -> Float {
        let s = sigmoid(x)
        return s + x * s * (1 - s)
    }
}
