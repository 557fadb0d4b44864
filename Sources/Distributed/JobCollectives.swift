import Foundation
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

    /// Runs the job's set-up (`body`, which makes no collective call) and agrees on its
    /// outcome before anything else is exchanged: if it failed on any rank — a flag, a file,
    /// a run folder, the user's errors — every rank ends with status 1 and the message is
    /// printed once, by the lowest rank that failed, with no `MPI_Abort` (its banner would
    /// bury the one line that matters). Every rank calls it exactly once. (`MPI_Allreduce`)
    public func agreeOnSetUp<Value>(_ body: () throws -> Value) -> Value {
        var outcome: Result<Value, Error>
        do { outcome = .success(try body()) } catch { outcome = .failure(error) }
        var failure = [0.0]
        if case .failure = outcome { failure[0] = Double(size - rank) }  // the lowest failing rank gives the largest
        abortOnError("agreeing on the set-up") { try allreduceMax(&failure) }
        switch outcome {
        case .success(let value) where failure[0] == 0:
            return value
        case .failure(let error) where Int(failure[0]) == size - rank:
            fputs((size > 1 ? "vavl: rank \(rank) of \(size): " : "vavl: ") + "\(error)\n", stderr)
        default:
            break  // another rank failed and says why
        }
        fflush(stdout)
        fflush(stderr)
        exit(1)  // MPI is finalised at exit, on every rank alike
    }

    /// Every rank's host name, in rank order (the first 64 bytes of each), for the run's
    /// start record. (`MPI_Allreduce` of each rank's slot, zeros elsewhere.)
    public func hostNames() -> [String] {
        let bytesPerName = 64, wordsPerName = bytesPerName / 8
        var own = Array(ProcessInfo.processInfo.hostName.utf8.prefix(bytesPerName))
        own += [UInt8](repeating: 0, count: bytesPerName - own.count)
        var words = [Int64](repeating: 0, count: size * wordsPerName)
        for word in 0..<wordsPerName {
            let bits = own[(word * 8)..<(word * 8 + 8)].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
            words[rank * wordsPerName + word] = Int64(bitPattern: bits)
        }
        abortOnError("sharing host names") { try allreduceSum(&words) }
        return (0..<size).map { member in
            let bytes = (0..<bytesPerName).map { UInt8(truncatingIfNeeded: UInt64(bitPattern: words[member * wordsPerName + $0 / 8]) >> (8 * UInt64($0 % 8))) }
            return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
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
