/// Elementwise kernels over unsafe buffers: activations, their backward passes and the
/// residual arithmetic of the Conformer. Each is one pass with no allocation; the
/// transcendental ones run 16 lanes at a time through ``FastMath``.
public enum Elementwise {
    /// y = x · σ(x)  (Swish / SiLU), over `count` elements.
    public static func swishForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
        let w = FastMath.width
        var i = 0
        while i + w <= count {
            let v = FastMath.load(x + i)
            FastMath.store(v * FastMath.sigmoid(v), y + i)
            i += w
        }
        while i < count { y[i] = x[i] * FastMath.sigmoid(x[i]); i += 1 }
    }

    /// dx = dy · (σ(x) + x σ(x)(1 − σ(x))).
    public static func swishBackward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>,
                                     _ x: UnsafePointer<Float>, count: Int) {
        let w = FastMath.width
        var i = 0
        while i + w <= count {
            let v = FastMath.load(x + i)
            let s = FastMath.sigmoid(v)
            FastMath.store(FastMath.load(dy + i) * (s + v * s * (1 - s)), dx + i)
            i += w
        }
        while i < count {
            let s = FastMath.sigmoid(x[i])
            dx[i] = dy[i] * (s + x[i] * s * (1 - s))
            i += 1
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
        let w = FastMath.width
        for row in 0..<rows {
            let a = x + row * 2 * channels, b = a + channels, out = y + row * channels
            var c = 0
            while c + w <= channels {
                FastMath.store(FastMath.load(a + c) * FastMath.sigmoid(FastMath.load(b + c)), out + c)
                c += w
            }
            while c < channels { out[c] = a[c] * FastMath.sigmoid(b[c]); c += 1 }
        }
    }

    /// dx (N, 2C) = [dy σ(b) | dy a σ(b)(1 − σ(b))].
    public static func gluBackward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>,
                                   _ x: UnsafePointer<Float>, rows: Int, channels: Int) {
        let w = FastMath.width
        for row in 0..<rows {
            let a = x + row * 2 * channels, b = a + channels, g = dy + row * channels
            let da = dx + row * 2 * channels, db = da + channels
            var c = 0
            while c + w <= channels {
                let s = FastMath.sigmoid(FastMath.load(b + c)), gv = FastMath.load(g + c)
                FastMath.store(gv * s, da + c)
                FastMath.store(gv * FastMath.load(a + c) * s * (1 - s), db + c)
                c += w
            }
            while c < channels {
                let s = FastMath.sigmoid(b[c])
                da[c] = g[c] * s
                db[c] = g[c] * a[c] * s * (1 - s)
                c += 1
            }
        }
    }

    /// y = softmax(scale · x) over one row of `count` values.
    @inline(__always)
    public static func softmax(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int, scale: Float) {
        var maximum = -Float.infinity
        for j in 0..<count { maximum = max(maximum, x[j]) }
        let w = FastMath.width
        var sum: Float = 0
        var j = 0
        var partial = FastMath.Vector(repeating: 0)
        while j + w <= count {
            let e = FastMath.exp((FastMath.load(x + j) - maximum) * scale)
            FastMath.store(e, y + j)
            partial += e
            j += w
        }
        sum = partial.sum()
        while j < count {
            let e = FastMath.exp((x[j] - maximum) * scale)
            y[j] = e
            sum += e
            j += 1
        }
        let inverse = 1 / sum
        for k in 0..<count { y[k] *= inverse }
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
