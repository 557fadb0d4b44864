import MPI
import VAVLCore

/// Every collective of a job outside the training step's gradients, statistics and loss
/// shares (those are ``MPICollectives``): the one list of what the ranks exchange while they
/// load, evaluate, checkpoint and finish. Training, evaluation and the experiments ask for
/// these operations by purpose and never call MPI themselves (`Scripts/test.sh` checks), so
/// the rule that every rank makes the same calls in the same order is kept here.
///
/// Each operation is one collective that every rank must call at the same point; a failure
/// ends the whole job with a message naming the operation (`Communicator.abortOnError`).
extension Communicator {
    /// Sums per-rank shares in place: evaluation results that each rank wrote for its own
    /// utterances, zeros elsewhere, become the whole result on every rank. (`MPI_Allreduce`)
    public func sumShares(_ values: inout [Float], of what: String) {
        abortOnError("gathering \(what)") { try allreduceSum(&values) }
    }

    /// Rank 0's `values` on every rank: a decision or statistics that rank 0 computed
    /// (normalisation statistics, whether a finished run is reused). (`MPI_Bcast`)
    public func shareFromRankZero(_ values: inout [Double], _ what: String) {
        abortOnError("broadcasting \(what)") { try broadcast(&values) }
    }

    /// Rank 0's `values` on every rank (integers). (`MPI_Bcast`)
    public func shareFromRankZero(_ values: inout [Int64], _ what: String) {
        abortOnError("broadcasting \(what)") { try broadcast(&values) }
    }

    /// The largest value of each element over the ranks (a report's peak memory). (`MPI_Allreduce`)
    public func maximumOverRanks(_ values: inout [Double], _ what: String) {
        abortOnError("comparing \(what)") { try allreduceMax(&values) }
    }

    /// Returns when every rank has got here: the end of training (no rank leaves before rank 0
    /// has written its files) and the edges of a timed benchmark step. (`MPI_Barrier`)
    public func waitForAllRanks(_ what: String) {
        abortOnError(what) { try barrier() }
    }
}

extension ReplicaSynchronization {
    /// Rank 0's BatchNorm running statistics on every rank, as DDP's `broadcast_buffers`
    /// does at the start of each iteration under local (per-rank) BatchNorm. (`MPI_Bcast`)
    public static func broadcastBuffersFromRankZero(_ store: ParameterStore, _ communicator: Communicator) {
        guard communicator.size > 1 else { return }
        communicator.abortOnError("broadcasting BatchNorm buffers") {
            try communicator.broadcast(UnsafeMutableBufferPointer(start: store.bufferValues, count: store.bufferCount))
        }
    }
}
