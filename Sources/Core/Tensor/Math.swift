#if canImport(Glibc)
import Glibc
#endif

/// The logistic sigmoid 1 / (1 + e^−x) with the library exp, for scalar call sites that are
/// not hot (losses, heads).
@inline(__always)
public func sigmoid(_ x: Float) -> Float {
    if x >= 0 {
        return 1 / (1 + Glibc.expf(-x))
    } else {
        let e = Glibc.expf(x)
        return e / (1 + e)
    }
}

/// Vectorised e^x and σ(x) for the hot elementwise loops (Swish, GLU, softmax): the Cephes
/// single-precision scheme — x = n·ln2 + r with |r| ≤ ln2/2, a degree-5 polynomial for e^r,
/// 2ⁿ put into the exponent bits — in 16-lane SIMD with no library calls, so the compiler
/// keeps it in vector registers. Relative error ≤ 2 ulp over the clamped range; inputs are
/// clamped to [−87.3, 88.7], where e^x stays a normal float.
public enum FastMath {
    public typealias Vector = SIMD16<Float>
    public static let width = Vector.scalarCount

    @inline(__always)
    public static func exp(_ input: Vector) -> Vector {
        let x0 = input.clamped(lowerBound: Vector(repeating: -87.3), upperBound: Vector(repeating: 88.7))
        let n = (x0 * 1.442_695_040_888_963_4 + 0.5).rounded(.down)
        var x = x0 - n * 0.693_359_375
        x = x - n * -2.121_944_400_546_905_8e-4
        var y = Vector(repeating: 1.987_569_150_0e-4)
        y = y * x + 1.398_199_950_7e-3
        y = y * x + 8.333_451_907_3e-3
        y = y * x + 4.166_579_589_4e-2
        y = y * x + 1.666_666_545_9e-1
        y = y * x + 5.000_000_120_1e-1
        y = y * (x * x) + x + 1
        let exponent = (SIMD16<Int32>(truncatingIfNeeded: SIMD16<Int32>(n)) &+ 127) &<< 23
        return y * unsafeBitCast(exponent, to: Vector.self)
    }

    @inline(__always)
    public static func sigmoid(_ x: Vector) -> Vector {
        1 / (1 + exp(-x))
    }

    /// Scalar versions with the same arithmetic, for loop tails.
    @inline(__always)
    public static func exp(_ x: Float) -> Float { exp(Vector(repeating: x))[0] }

    @inline(__always)
    public static func sigmoid(_ x: Float) -> Float { 1 / (1 + exp(-x)) }

    @inline(__always)
    static func load(_ pointer: UnsafePointer<Float>) -> Vector {
        UnsafeRawPointer(pointer).loadUnaligned(as: Vector.self)
    }

    @inline(__always)
    static func store(_ value: Vector, _ pointer: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(pointer).storeBytes(of: value, as: Vector.self)
    }
}
