/// Elementwise kernels over unsafe buffers: activations, their backward passes and the
/// residual arithmetic of the Conformer. Each is one pass with no allocation; the
/// transcendental ones use ``FastMath`` so that the loops vectorise.
public enum Elementwise {
    /// y = x · σ(x)  (Swish / SiLU), over `count` elements.
    public static func swishForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
        Parallel.chunks(count) { range in
            for i in range { y[i] = FastMath.swish(x[i]) }
        }
    }

    /// dx = dy · (σ(x) + x σ(x)(1 − σ(x))).
    public static func swishBackward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>,
                                     _ x: UnsafePointer<Float>, count: Int) {
        Parallel.chunks(count) { range in
            for i in range { dx[i] = dy[i] * FastMath.swishDerivative(x[i]) }
        }
    }

    /// y = max(x, 0).
    public static func reluForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
        for i in 0..<count { y[i] = x[i] > 0 ? x[i] : 0 }
    }

    /// dx = dy where x > 0, else 0.
    public static func reluBackward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>,
                                    _ x: UnsafePointer<Float>, count: Int) {
        for i in 0..<count { dx[i] = x[i] > 0 ? dy[i] : 0 }
    }

    /// GLU over channels: y (N, C) = a · σ(b) with x (N, 2C) = [a | b].
    public static func gluForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, rows: Int, channels: Int) {
        Parallel.chunks(rows, elementsPerItem: channels) { range in gluForwardRows(y, x, range, channels: channels) }
    }

    private static func gluForwardRows(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ rows: Range<Int>,
                                       channels: Int) {
        for row in rows {
            let a = x + row * 2 * channels, b = a + channels, out = y + row * channels
            for c in 0..<channels { out[c] = a[c] * FastMath.sigmoid(b[c]) }
        }
    }

    /// dx (N, 2C) = [dy σ(b) | dy a σ(b)(1 − σ(b))].
    public static func gluBackward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>,
                                   _ x: UnsafePointer<Float>, rows: Int, channels: Int) {
        Parallel.chunks(rows, elementsPerItem: channels) { range in gluBackwardRows(dx, dy, x, range, channels: channels) }
    }

    private static func gluBackwardRows(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>,
                                        _ x: UnsafePointer<Float>, _ rows: Range<Int>, channels: Int) {
        for row in rows {
            let a = x + row * 2 * channels, b = a + channels, g = dy + row * channels
            let da = dx + row * 2 * channels, db = da + channels
            for c in 0..<channels {
                let s = FastMath.sigmoid(b[c])
                da[c] = g[c] * s
                db[c] = g[c] * a[c] * s * (1 - s)
            }
        }
    }

    /// y = softmax(scale · x) over one row of `count` values.
    @inline(__always)
    public static func softmax(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int, scale: Float) {
        let maximum = Reductions.maximum(x, count: count)
        for j in 0..<count { y[j] = FastMath.exp((x[j] - maximum) * scale) }
        let inverse = 1 / Reductions.sum(y, count: count)
        for j in 0..<count { y[j] *= inverse }
    }

    /// y = a + scale · b.
    @inline(__always)
    public static func addScaled(_ y: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                                 scale: Float, count: Int) {
        Parallel.chunks(count) { range in
            for i in range { y[i] = a[i] + scale * b[i] }
        }
    }

    /// y += scale · x.
    @inline(__always)
    public static func accumulate(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, scale: Float = 1, count: Int) {
        Parallel.chunks(count) { range in
            for i in range { y[i] += scale * x[i] }
        }
    }

    /// y = scale · x.
    @inline(__always)
    public static func scale(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, by scale: Float, count: Int) {
        Parallel.chunks(count) { range in
            for i in range { y[i] = scale * x[i] }
        }
    }
}
