/// Elementwise kernels over unsafe buffers: activations, their backward passes and the
/// residual arithmetic of the Conformer. Each is one loop with no allocation.
public enum Elementwise {
    /// y = x · σ(x)  (Swish / SiLU), over `count` elements.
    @inline(__always)
    public static func swishForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
        for i in 0..<count { y[i] = x[i] * sigmoid(x[i]) }
    }

    /// dx = dy · (σ(x) + x σ(x)(1 − σ(x))).
    @inline(__always)
    public static func swishBackward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>,
                                     _ x: UnsafePointer<Float>, count: Int) {
        for i in 0..<count {
            let s = sigmoid(x[i])
            dx[i] = dy[i] * (s + x[i] * s * (1 - s))
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
        for row in 0..<rows {
            let a = x + row * 2 * channels, b = a + channels, out = y + row * channels
            for c in 0..<channels { out[c] = a[c] * sigmoid(b[c]) }
        }
    }

    /// dx (N, 2C) = [dy σ(b) | dy a σ(b)(1 − σ(b))].
    public static func gluBackward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>,
                                   _ x: UnsafePointer<Float>, rows: Int, channels: Int) {
        for row in 0..<rows {
            let a = x + row * 2 * channels, b = a + channels, g = dy + row * channels
            let da = dx + row * 2 * channels, db = da + channels
            for c in 0..<channels {
                let s = sigmoid(b[c])
                da[c] = g[c] * s
                db[c] = g[c] * a[c] * s * (1 - s)
            }
        }
    }

    /// y = a + scale · b.
    @inline(__always)
    public static func addScaled(_ y: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                                 scale: Float, count: Int) {
        for i in 0..<count { y[i] = a[i] + scale * b[i] }
    }

    /// y += scale · x.
    @inline(__always)
    public static func accumulate(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, scale: Float = 1, count: Int) {
        for i in 0..<count { y[i] += scale * x[i] }
    }
}
