/// Hyperparameters of Adam (DESIGN §3 defaults; PyTorch `Adam(weight_decay=)` semantics).
public struct AdamConfiguration: Codable, Equatable, Sendable {
    public var learningRate: Float = 5e-5
    public var beta1: Float = 0.95
    public var beta2: Float = 0.999
    public var epsilon: Float = 1e-8
    /// L2 penalty added to the gradient (not decoupled as in AdamW).
    public var weightDecay: Float = 5e-7

    public init() {}
}
