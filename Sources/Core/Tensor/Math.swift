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

