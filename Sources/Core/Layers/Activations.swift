/// Activation layers as forward/backward pairs over (N, C) matrices. Each saves its input
/// (the backward needs it) by keeping a reference to the caller's matrix.

/// Swish(x) = x · σ(x).
public final class Swish: FrameLayer {
    public let output = Matrix()

    /// `workspace`: the model's (by default a workspace of its own).
    public init(workspace: Workspace = Workspace()) { sharedInputGradient = workspace.matrix("swish.inputGradient") }
    /// Shared by the model's layers of this kind (one backward at a time, its workspace);
    /// read it before the next backward.
    private let sharedInputGradient: Matrix
    public var inputGradient: Matrix { sharedInputGradient }
    private var input: Matrix?

    public func forward(_ x: Matrix, _ context: RunContext) -> Matrix { forward(x, context, roundingOutput: false) }

    /// The output rounded to bf16 by the last forward that was asked for it (bf16 only).
    public private(set) var roundedOutput: RoundedOperand?
    /// The storage `roundedOutput` is refilled in, kept across forwards.
    private var roundedStorage: RoundedOperand?

    /// With `roundingOutput`, in bf16 the output is rounded a cache-sized piece at a time
    /// right after it is computed, into ``roundedOutput``, and not kept in fp32: the
    /// returned matrix is then empty (0 rows); the backward needs only x.
    public func forward(_ x: Matrix, _ context: RunContext, roundingOutput: Bool) -> Matrix {
        input = x
        let rounded = roundingOutput ? context.store.operandToFill(rows: x.rows, columns: x.columns, storage: &roundedStorage) : nil
        roundedOutput = rounded
        guard let rounded else {
            output.resize(rows: x.rows, columns: x.columns)
            Elementwise.swishForward(output.data, x.data, count: x.count)
            return output
        }
        output.resize(rows: 0, columns: x.columns)
        let source = x.data, piece = 4096
        Parallel.chunks(x.count) { range in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: piece) { scratch in
                let y = scratch.baseAddress!
                var start = range.lowerBound
                while start < range.upperBound {
                    let end = min(start + piece, range.upperBound)
                    for i in start..<end { y[i - start] = FastMath.swish(source[i]) }
                    rounded.fill(y, at: start, count: end - start)
                    start = end
                }
            }
        }
        return output
    }

    public func backward(_ dy: Matrix, _ context: RunContext) -> Matrix {
        let x = input!
        inputGradient.resize(rows: x.rows, columns: x.columns)
        Elementwise.swishBackward(inputGradient.data, dy.data, x.data, count: x.count)
        return inputGradient
    }
}

/// GLU over channels: (N, 2C) → (N, C), `a · σ(b)` with `a` the first C channels.
public final class GLU: FrameLayer {
    public let output = Matrix()

    /// `workspace`: the model's (by default a workspace of its own).
    public init(workspace: Workspace = Workspace()) { sharedInputGradient = workspace.matrix("glu.inputGradient") }
    /// Shared by the model's layers of this kind (one backward at a time, its workspace);
    /// read it before the next backward.
    private let sharedInputGradient: Matrix
    public var inputGradient: Matrix { sharedInputGradient }
    private var input: Matrix?

    public func forward(_ x: Matrix, _ context: RunContext) -> Matrix {
        precondition(x.columns % 2 == 0, "GLU needs an even number of channels")
        input = x
        output.resize(rows: x.rows, columns: x.columns / 2)
        Elementwise.gluForward(output.data, x.data, rows: x.rows, channels: x.columns / 2)
        return output
    }

    public func backward(_ dy: Matrix, _ context: RunContext) -> Matrix {
        let x = input!
        inputGradient.resize(rows: x.rows, columns: x.columns)
        Elementwise.gluBackward(inputGradient.data, dy.data, x.data, rows: x.rows, channels: x.columns / 2)
        return inputGradient
    }
}
