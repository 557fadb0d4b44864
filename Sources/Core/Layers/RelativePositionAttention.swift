import BLAS
#if canImport(Glibc)
import Glibc
#endif

/// The Conformer's multi-head self-attention module with relative positions (DESIGN §2.3):
/// LayerNorm → relative-position attention → Dropout, each utterance attending over its
/// own frames only.
///
/// For an utterance of T frames and head h (D = C/H):
///   q, k, v = query(x), key(x), value(x);  p = pos(PE[0..<T])
///   C[i, j] = (q[i] + u)·k[j],  S[i, j] = (q[i] + v_b)·p[j],  P = relshift(S)
///   A = softmax_j((C + P) / √C_model),  context[i] = Σ_j dropout(A)[i, j] v[j]
///   output = out(context), then dropout.
public final class RelativePositionAttention: Layer {
    public let channels: Int
    public let heads: Int
    public let headDimension: Int
    public let norm: LayerNorm
    public let query: Linear, key: Linear, value: Linear, out: Linear
    public let position: Linear  // no bias
    public let uBias: Parameter  // (H, D)
    public let vBias: Parameter  // (H, D)
    public let attentionDropout: Dropout
    public let outputDropout: Dropout
    let encoding: PositionalEncoding

    public let output = Matrix()
    public var inputGradient: Matrix { shared.inputGradient }
    private var segments = Segments(offsets: [0])
    // Saved activations, (N, C) unless noted.
    private let q = Matrix(), k = Matrix(), v = Matrix()
    private let qu = Matrix(), qv = Matrix()
    private let projectedPositions = Matrix()  // (T_max, C)
    private let context = Matrix()
    private var probabilities: [Float] = []    // Σ_b H T_b², softmax output per utterance and head
    private var probabilityOffsets: [Int] = []  // (B + 1) start of utterance b's H T_b² block
    /// Whether the last forward kept what the backward needs (training mode).
    private var keptForBackward = false
    /// Softmax outputs kept for the backward (tests: none after an evaluation pass).
    var storedProbabilityCount: Int { keptForBackward ? probabilityOffsets.last ?? 0 : 0 }
    /// Score scratch held by the first `participants` workers (tests).
    func scratchFloats(participants: Int) -> Int { workers.scratchFloats(participants: participants) }
    /// Backward-only buffers shared by the model's attention modules (its workspace);
    /// dPositions is (T_max, C), the rest (N, C) (dPositionsByUtterance holds each
    /// utterance's position gradient in its own rows).
    private let workers: AttentionWorkers
    /// The normalised input rounded to bf16 (bf16 mode), from the forward to the backward.
    private var roundedNormalized: RoundedOperand?
    private let shared: (dOutput: Matrix, dQu: Matrix, dQv: Matrix, dK: Matrix, dV: Matrix, dContext: Matrix,
                         dPositions: Matrix, dPositionsByUtterance: Matrix, dNormalized: Matrix, inputGradient: Matrix)

    public init(_ registry: ParameterRegistry, _ name: String, channels: Int, heads: Int,
                attentionDropout: Float, outputDropout: Float, epsilon: Float = 1e-5) {
        workers = registry.workspace.attentionWorkers
        let w = { registry.workspace.matrix("attention." + $0) }
        shared = (w("dOutput"), w("dQu"), w("dQv"), w("dK"), w("dV"), w("dContext"), w("dPositions"),
                  w("dPositionsByUtterance"), w("dNormalized"), w("inputGradient"))
        precondition(channels % heads == 0, "model dimension \(channels) is not divisible by \(heads) heads")
        self.channels = channels
        self.heads = heads
        headDimension = channels / heads
        encoding = PositionalEncoding(channels: channels)
        let d = channels / heads
        (norm, query, key, value, out, position, uBias, vBias, self.attentionDropout, self.outputDropout) = registry.scope(name) {
            (LayerNorm(registry, "norm", channels: channels, epsilon: epsilon),
             Linear(registry, "query", inputs: channels, outputs: channels, initialization: .xavier),
             Linear(registry, "key", inputs: channels, outputs: channels, initialization: .xavier),
             Linear(registry, "value", inputs: channels, outputs: channels, initialization: .xavier),
             Linear(registry, "out", inputs: channels, outputs: channels, initialization: .xavier),
             Linear(registry, "pos", inputs: channels, outputs: channels, bias: false, initialization: .xavier),
             registry.parameter("u_bias", shape: [heads, d], initializer: .xavierUniform(fanIn: d, fanOut: heads)),
             registry.parameter("v_bias", shape: [heads, d], initializer: .xavierUniform(fanIn: d, fanOut: heads)),
             Dropout(registry, "attention_dropout", probability: attentionDropout),
             Dropout(registry, "dropout", probability: outputDropout))
        }
    }

    /// P = relshift(S) for one T × T matrix, added into `target`:
    /// P[i, j] = S[i, T−1−i+j] for j ≤ i, 0 for j = i+1, S[i+1, j−i−2] for j > i+1
    /// (the Transformer-XL pad-and-reshape trick; DESIGN §2.3 gives the index formula).
    @inline(__always)
    static func addRelativeShift(_ target: UnsafeMutablePointer<Float>, _ s: UnsafePointer<Float>, length t: Int) {
        addRelativeShift(target, s, rows: 0..<t, length: t)
    }

    /// The rows `rows` of relshift(S) added into `target` (row r of `target` is P's row
    /// rows.lowerBound + r), from the rows of S starting at rows.lowerBound (row i of P reads S's
    /// rows i and i + 1, so `s` holds rows.count + 1 rows, or rows.count when the block ends at T).
    @inline(__always)
    static func addRelativeShift(_ target: UnsafeMutablePointer<Float>, _ s: UnsafePointer<Float>, rows: Range<Int>, length t: Int) {
        let first = rows.lowerBound
        for i in rows {
            let row = target + (i - first) * t
            let same = s + (i - first) * t + (t - 1 - i)
            for j in 0...i { row[j] += same[j] }
            if i + 1 < t {
                let next = s + (i + 1 - first) * t - (i + 2)
                for j in (i + 2)..<max(t, i + 2) { row[j] += next[j] }
            }
        }
    }

    /// Query rows per block in an evaluation pass whose longest utterance is longer: no
    /// backward follows inference, so its scores are formed a block of queries at a time and
    /// nothing T² is kept — memory grows with T, not T² (a 20,000-frame utterance needs ~120 MB
    /// of scratch instead of 3 GB a head). Shorter batches take the training path (which
    /// keeps the weights, so a backward may follow, as the parity tests do in eval mode).
    static let queryBlock = 512

    /// dS += relshiftᵀ(dP): the transposed scatter of ``addRelativeShift``.
    @inline(__always)
    static func addRelativeShiftTranspose(_ ds: UnsafeMutablePointer<Float>, _ dp: UnsafePointer<Float>, length t: Int) {
        for i in 0..<t {
            let row = dp + i * t
            let same = ds + i * t + (t - 1 - i)
            for j in 0...i { same[j] += row[j] }
            if i + 1 < t {
                let next = ds + (i + 1) * t - (i + 2)
                for j in (i + 2)..<max(t, i + 2) { next[j] += row[j] }
            }
        }
    }

    public func forward(_ x: Matrix, segments: Segments, _ context: RunContext) -> Matrix {
        forward(x, segments: segments, context, residual: nil)
    }

    /// With `residual`, the last pass writes `residual.target` = x + scale · module(x)
    /// instead of the module's output, and returns it.
    public func forward(_ x: Matrix, segments: Segments, _ context: RunContext, residual: ResidualSum?) -> Matrix {
        let store = context.store, n = x.rows, c = channels
        self.segments = segments
        // In bf16 the normalised input is rounded once, by the LayerNorm as it writes it, for
        // the three projections and their weight gradients.
        let normalized = norm.forward(x, context, roundingOutput: true)
        roundedNormalized = norm.roundedOutput
        for (layer, target) in [(query, q), (key, k), (value, v)] {
            target.resize(rows: n, columns: c)
            layer.forward(target.data, normalized.data, rows: n, store, roundedInput: roundedNormalized)
        }
        // q + u and q + v_b, per head.
        qu.resize(rows: n, columns: c)
        qv.resize(rows: n, columns: c)
        let u = store.pointer(uBias), vb = store.pointer(vBias)
        Parallel.chunks(n, elementsPerItem: c) { rows in
            for row in rows {
                let qRow = q.row(row), quRow = qu.row(row), qvRow = qv.row(row)
                for i in 0..<c { quRow[i] = qRow[i] + u[i]; qvRow[i] = qRow[i] + vb[i] }
            }
        }
        // p = pos(PE) for the longest utterance; shorter ones use its first rows.
        let longest = segments.maximumLength
        let table = encoding.rows(longest)
        projectedPositions.resize(rows: longest, columns: c)
        position.forward(projectedPositions.data, table.data, rows: longest, store)

        self.context.resize(rows: n, columns: c)
        let scale = 1 / Float(c).squareRoot()
        // Per-utterance, per-head attention into self.context: whole (T, T) scores kept for the
        // backward, or, in an evaluation pass with a long utterance, blocks of queries.
        keptForBackward = !(context.mode == .evaluation && longest > Self.queryBlock)
        if keptForBackward {
            attendKeepingWeights(segments, context, longest: longest, scale: scale)
        } else {
            precondition(!attentionDropout.isActive(context), "attention dropout is off in evaluation mode")
            evaluateInBlocks(segments, store: store, longest: longest, scale: scale)
        }
        output.resize(rows: n, columns: c)
        out.forward(output.data, self.context.data, rows: n, store, addingBias: false)
        return outputDropout.finish(output, input: x, adding: out.biasPointer(store), residual: residual,
                                    segments: segments, context)
    }

    /// The attention of a pass a backward may follow: softmax weights of every utterance and
    /// head kept in `probabilities` (H T_b² per utterance), dropout on them when active.
    private func attendKeepingWeights(_ segments: Segments, _ context: RunContext, longest: Int, scale: Float) {
        let store = context.store, c = channels, d = headDimension
        probabilityOffsets = [0]
        for b in 0..<segments.count { probabilityOffsets.append(probabilityOffsets[b] + heads * segments.length(b) * segments.length(b)) }
        if probabilities.count < probabilityOffsets.last! { probabilities = [Float](repeating: 0, count: probabilityOffsets.last!) }
        let dropoutActive = attentionDropout.isActive(context)
        let offsets = probabilityOffsets
        probabilities.withUnsafeMutableBufferPointer { allProbabilities in
            let probabilityBase = allProbabilities.baseAddress!
            workers.run(segments, heads: heads, headDimension: d, scoreRows: longest, longest: longest) { b, h, scratch in
                let sc = scratch.scores, ps = scratch.positionScores, dr = scratch.dropped, mask = scratch.multipliers
                let start = segments.start(b), t = segments.length(b)
                let column = h * d
                store.multiply(transposeB: .transposed, m: t, n: t, k: d, a: qu.row(start) + column, lda: c,
                               b: .matrix(k.row(start) + column), ldb: c, c: sc, ldc: t)
                store.multiply(transposeB: .transposed, m: t, n: t, k: d, a: qv.row(start) + column, lda: c,
                               b: .matrix(projectedPositions.data + column), ldb: c, c: ps, ldc: t)
                Self.addRelativeShift(sc, ps, length: t)
                let a = probabilityBase + offsets[b] + h * t * t
                softmaxRows(a, sc, rows: t, columns: t, scale: scale)
                var weights = UnsafePointer(a)
                if dropoutActive {
                    attentionDropout.applyAttention(to: dr, from: a, length: t, head: h, utterance: b,
                                                    multipliers: mask, context)
                    weights = UnsafePointer(dr)
                }
                store.multiply(m: t, n: d, k: t, a: weights, lda: t, b: .matrix(v.row(start) + column), ldb: c,
                               c: self.context.row(start) + column, ldc: c)
            }
        }
    }

    /// The attention of an evaluation pass, a block of ``queryBlock`` queries at a time: per
    /// block, C and S for those rows (S one row more: relshift reads the next row), P added,
    /// softmax, and the block's context rows. No probabilities are kept.
    private func evaluateInBlocks(_ segments: Segments, store: ParameterStore, longest: Int, scale: Float) {
        let c = channels, d = headDimension, block = Self.queryBlock
        workers.run(segments, heads: heads, headDimension: d, scoreRows: min(longest, block + 1), longest: longest) { b, h, scratch in
            let sc = scratch.scores, ps = scratch.positionScores, probabilities = scratch.dropped
            let start = segments.start(b), t = segments.length(b), column = h * d
            var first = 0
            while first < t {
                let end = min(first + block, t), rows = end - first, positionRows = min(end + 1, t) - first
                store.multiply(transposeB: .transposed, m: rows, n: t, k: d, a: qu.row(start + first) + column, lda: c,
                               b: .matrix(k.row(start) + column), ldb: c, c: sc, ldc: t)
                store.multiply(transposeB: .transposed, m: positionRows, n: t, k: d, a: qv.row(start + first) + column, lda: c,
                               b: .matrix(projectedPositions.data + column), ldb: c, c: ps, ldc: t)
                Self.addRelativeShift(sc, ps, rows: first..<end, length: t)
                softmaxRows(probabilities, sc, rows: rows, columns: t, scale: scale)
                store.multiply(m: rows, n: d, k: t, a: probabilities, lda: t, b: .matrix(v.row(start) + column), ldb: c,
                               c: self.context.row(start + first) + column, ldc: c)
                first = end
            }
        }
    }

    /// y = softmax(scale · x) per row.
    @inline(__always)
    private func softmaxRows(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, rows: Int, columns: Int, scale: Float) {
        for row in 0..<rows { Elementwise.softmax(y + row * columns, x + row * columns, count: columns, scale: scale) }
    }

    public func backward(_ dy: Matrix, _ context: RunContext) -> Matrix {
        let dNormalized = backwardToNormalized(dy, context)
        norm.backward(dNormalized, context, into: inputGradient, accumulating: false)
        return inputGradient
    }

    /// The backward with dx added to `target`, which may be `dy` itself (dy is read first).
    public func backward(_ dy: Matrix, _ context: RunContext, addingTo target: Matrix) {
        norm.backward(backwardToNormalized(dy, context), context, into: target, accumulating: true)
    }

    /// Everything but the LayerNorm: dL/d(normalized input).
    private func backwardToNormalized(_ dy: Matrix, _ context: RunContext) -> Matrix {
        precondition(keptForBackward, "attention backward after an evaluation-mode forward (which keeps nothing for it)")
        let store = context.store, n = dy.rows, c = channels, d = headDimension
        let segments = self.segments
        let (dOutput, dQu, dQv, dK, dV, dContext, dPositions, dPositionsByUtterance, dNormalized, _) = shared
        // Through the output dropout (same mask), then out.
        dOutput.resize(rows: n, columns: c)
        outputDropout.apply(to: dOutput.data, from: dy.data, columns: c, segments: segments, context)
        dContext.resize(rows: n, columns: c)
        out.backward(dContext.data, dOutput.data, self.context.data, rows: n, store)

        // Every (utterance, head) block of dqu, dqv, dk, dv and of the per-utterance position
        // gradients is written exactly once below (β = 0), so they need no zeroing.
        for gradient in [dQu, dQv, dK, dV, dPositionsByUtterance] { gradient.resize(rows: n, columns: c) }
        let longest = segments.maximumLength
        let scale = 1 / Float(c).squareRoot()
        let dropoutActive = attentionDropout.isActive(context)
        let offsets = probabilityOffsets
        probabilities.withUnsafeMutableBufferPointer { allProbabilities in
            let probabilityBase = allProbabilities.baseAddress!
            workers.run(segments, heads: heads, headDimension: d, scoreRows: longest, longest: longest) { b, h, scratch in
                let dA = scratch.scores, dS = scratch.positionScores, dropped = scratch.dropped
                let mask = scratch.multipliers
                let start = segments.start(b), t = segments.length(b)
                let column = h * d
                let a = probabilityBase + offsets[b] + h * t * t
                var weights = UnsafePointer(a)
                if dropoutActive {
                    attentionDropout.applyAttention(to: dropped, from: a, length: t, head: h, utterance: b,
                                                    multipliers: mask, context)
                    weights = UnsafePointer(dropped)
                }
                // dv = A'ᵀ dcontext;  dA' = dcontext vᵀ
                store.multiply(transposeA: .transposed, m: t, n: d, k: t, a: weights, lda: t,
                               b: .matrix(dContext.row(start) + column), ldb: c, c: dV.row(start) + column, ldc: c)
                store.multiply(transposeB: .transposed, m: t, n: t, k: d, a: dContext.row(start) + column, lda: c,
                               b: .matrix(v.row(start) + column), ldb: c, c: dA, ldc: t)
                if dropoutActive {
                    attentionDropout.applyAttention(to: dA, from: dA, length: t, head: h, utterance: b,
                                                    multipliers: mask, context)
                }
                // dZ = A ⊙ (dA − Σ_j dA A) · scale, in place in dA.
                for i in 0..<t {
                    let aRow = a + i * t, gRow = dA + i * t
                    let dot = Reductions.dot(gRow, aRow, count: t)
                    for j in 0..<t { gRow[j] = aRow[j] * (gRow[j] - dot) * scale }
                }
                // Content term: dqu = dZ k, dk = dZᵀ qu.
                store.multiply(m: t, n: d, k: t, a: dA, lda: t, b: .matrix(k.row(start) + column), ldb: c,
                               c: dQu.row(start) + column, ldc: c)
                store.multiply(transposeA: .transposed, m: t, n: d, k: t, a: dA, lda: t,
                               b: .matrix(qu.row(start) + column), ldb: c, c: dK.row(start) + column, ldc: c)
                // Position term: dS = relshiftᵀ(dZ); dqv = dS p, dp_b = dSᵀ qv (this utterance's
                // rows of the per-utterance position gradients).
                dS.update(repeating: 0, count: t * t)
                Self.addRelativeShiftTranspose(dS, dA, length: t)
                store.multiply(m: t, n: d, k: t, a: dS, lda: t, b: .matrix(projectedPositions.data + column), ldb: c,
                               c: dQv.row(start) + column, ldc: c)
                store.multiply(transposeA: .transposed, m: t, n: d, k: t, a: dS, lda: t,
                               b: .matrix(qv.row(start) + column), ldb: c, c: dPositionsByUtterance.row(start) + column, ldc: c)
            }
        }
        // dp = Σ_b dp_b in utterance order, whichever thread computed each.
        dPositions.resizeZeroed(rows: longest, columns: c)
        Parallel.columnBlocks(c, rows: n) { columns in
            for b in 0..<segments.count {
                for j in 0..<segments.length(b) {
                    let source = dPositionsByUtterance.row(segments.start(b) + j), target = dPositions.row(j)
                    for i in columns { target[i] += source[i] }
                }
            }
        }
        // u and v_b gradients are column sums of dqu and dqv; dq = dqu + dqv.
        let du = store.gradient(uBias), dvb = store.gradient(vBias)
        Parallel.columnBlocks(c, rows: n) { columns in
            for row in 0..<n {
                let a = dQu.row(row), b = dQv.row(row)
                for i in columns {
                    du[i] += a[i]
                    dvb[i] += b[i]
                    a[i] += b[i]
                }
            }
        }
        let dq = dQu
        position.backward(nil, dPositions.data, encoding.table.data, rows: longest, store)
        dNormalized.resize(rows: n, columns: c)
        let normalized = norm.output
        query.backward(dNormalized.data, dq.data, normalized.data, rows: n, store, roundedInput: roundedNormalized)
        key.backward(dNormalized.data, accumulate: true, dK.data, normalized.data, rows: n, store, roundedInput: roundedNormalized)
        value.backward(dNormalized.data, accumulate: true, dV.data, normalized.data, rows: n, store, roundedInput: roundedNormalized)
        return dNormalized
    }
}
