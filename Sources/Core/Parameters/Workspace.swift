/// The scratch matrices of one model's backward passes. A model runs one backward at a
/// time, so the layers of one kind can share their gradient buffers (the memory of one
/// layer's backward serves the next); two models have two workspaces and can run their
/// passes at the same time. Layers take their scratch from the registry's workspace when
/// they are built.
public final class Workspace {
    private var matrices: [String: Matrix] = [:]
    /// The attention modules' per-thread scratch and work queue.
    let attentionWorkers = AttentionWorkers()

    public init() {}

    /// The matrix named `key` in this workspace, created empty on first use.
    public func matrix(_ key: String) -> Matrix {
        if let found = matrices[key] { return found }
        let matrix = Matrix()
        matrices[key] = matrix
        return matrix
    }
}
