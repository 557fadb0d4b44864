/// Mean over each utterance's own frames: (N, C) → (B, C). An utterance without frames
/// pools to zeros (callers never pass one; the model filters by modality first).
public final class MeanPooling: Layer {
    public let output = Matrix()
    public let inputGradient = Matrix()
    private var segments = Segments(offsets: [0])

    public init() {}

    public func forward(_ x: Matrix, segments: Segments, _ context: RunContext) -> Matrix {
        pool(x, segments: segments)
    }

    /// The forward outside a pass (the reconstruction targets); needs no context.
    public func pool(_ x: Matrix, segments: Segments) -> Matrix {
        self.segments = segments
        let c = x.columns
        output.resizeZeroed(rows: segments.count, columns: c)
        for b in 0..<segments.count {
            let length = segments.length(b)
            if length == 0 { continue }
            let yRow = output.row(b)
            for row in segments.range(b) { Elementwise.accumulate(yRow, x.row(row), count: c) }
            let inverse = 1 / Float(length)
            for i in 0..<c { yRow[i] *= inverse }
        }
        return output
    }

    /// dx[t] = dy[b] / T_b for every frame t of utterance b.
    public func backward(_ dy: Matrix, _ context: RunContext) -> Matrix {
        let c = dy.columns
        inputGradient.resize(rows: segments.totalRows, columns: c)
        for b in 0..<segments.count {
            let inverse = 1 / Float(max(segments.length(b), 1))
            let gRow = dy.row(b)
            for row in segments.range(b) {
                let dxRow = inputGradient.row(row)
                for i in 0..<c { dxRow[i] = gRow[i] * inverse }
            }
        }
        return inputGradient
    }
}
