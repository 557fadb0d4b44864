/// The one calling convention of the model's layers (DESIGN §10): a forward/backward pair
/// over the packed rows of a batch.
///
/// `x` is (N, C_in): the frames of the batch's utterances one after another, utterance b
/// owning the rows `segments.range(b)`. `forward` returns y (N', C_out) in a matrix the layer
/// owns (valid until its next forward) and keeps what its backward needs. `backward` takes
/// dL/dy of the last forward, adds dL/dθ into `context.store`'s gradients and returns dL/dx
/// in a matrix the layer (or its model's `Workspace`) owns — read it before the next backward.
///
/// Two tiers below the layers do not follow it, on purpose: `Linear` is an operation on raw
/// rows (pointers + a row count, as llm.c's `matmul_forward`), because its callers fuse it —
/// a bias added in the next pass, a dx accumulated into a residual, a bf16 operand rounded
/// once and shared; the `Elementwise`/`Dropout` kernels are plain functions. Models
/// (`VAVLModel`, `UnimodalBaseline`) run layers and end the backward at their inputs, so
/// they are `TrainableModel`s, not layers.
public protocol Layer: AnyObject {
    /// y = f(x); `segments` are the utterance boundaries of x's rows.
    func forward(_ x: Matrix, segments: Segments, _ context: RunContext) -> Matrix
    /// dx from dy, accumulating parameter gradients into `context.store`.
    func backward(_ dy: Matrix, _ context: RunContext) -> Matrix
}

/// A layer that never looks at utterance boundaries (LayerNorm, the activations, BatchNorm,
/// the heads): it maps frames, so it is called without segments.
public protocol FrameLayer: Layer {
    func forward(_ x: Matrix, _ context: RunContext) -> Matrix
}

extension FrameLayer {
    public func forward(_ x: Matrix, segments: Segments, _ context: RunContext) -> Matrix { forward(x, context) }
}
