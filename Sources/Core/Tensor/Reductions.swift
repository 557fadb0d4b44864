/// Sums and dot products over contiguous rows, eight lanes at a time (and the unaligned
/// eight-lane load and store the other hand-vectorised loops share). Swift keeps float
/// addition in program order, so a plain `sum += x[i]` loop runs one add per element with
/// the latency of each; these keep eight partial sums (the order PyTorch's CPU kernels use
/// too) and so run at the speed of the loads.
public enum Reductions {
    @inline(__always)
    static func load(_ pointer: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(pointer).loadUnaligned(as: SIMD8<Float>.self)
    }

    @inline(__always)
    static func store(_ value: SIMD8<Float>, _ pointer: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(pointer).storeBytes(of: value, as: SIMD8<Float>.self)
    }

    /// Σ x[i].
    @inline(__always)
    public static func sum(_ x: UnsafePointer<Float>, count: Int) -> Float {
        var lanes = SIMD8<Float>.zero
        var i = 0
        while i + 8 <= count {
            lanes += load(x + i)
            i += 8
        }
        var total = lanes.sum()
        while i < count {
            total += x[i]
            i += 1
        }
        return total
    }

    /// Σ (x[i] − shift)².
    @inline(__always)
    public static func sumOfSquares(_ x: UnsafePointer<Float>, shift: Float, count: Int) -> Float {
        var lanes = SIMD8<Float>.zero
        let center = SIMD8<Float>(repeating: shift)
        var i = 0
        while i + 8 <= count {
            let d = load(x + i) - center
            lanes.addProduct(d, d)
            i += 8
        }
        var total = lanes.sum()
        while i < count {
            let d = x[i] - shift
            total += d * d
            i += 1
        }
        return total
    }

    /// Σ a[i] b[i].
    @inline(__always)
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
        var lanes = SIMD8<Float>.zero
        var i = 0
        while i + 8 <= count {
            lanes.addProduct(load(a + i), load(b + i))
            i += 8
        }
        var total = lanes.sum()
        while i < count {
            total += a[i] * b[i]
            i += 1
        }
        return total
    }

    /// max x[i] (−∞ for no elements).
    @inline(__always)
    public static func maximum(_ x: UnsafePointer<Float>, count: Int) -> Float {
        var lanes = SIMD8<Float>(repeating: -.infinity)
        var i = 0
        while i + 8 <= count {
            let values = load(x + i)
            lanes.replace(with: values, where: values .> lanes)
            i += 8
        }
        var result = lanes.max()
        while i < count {
            result = max(result, x[i])
            i += 1
        }
        return result
    }
}
