import MPI
import VAVLCore

/// Start-of-training agreement between replicas (DESIGN §4.1): rank 0's parameters, buffers
/// and counters are broadcast, then a checksum of each rank's copy is compared; a mismatch
/// aborts the job with a message naming the rank.
public enum ReplicaSynchronization {
    /// Broadcasts everything in `store` from rank 0, then verifies every rank holds the same bits.
    public static func broadcastFromRankZero(_ store: ParameterStore, _ communicator: Communicator = .world) {
        if communicator.size == 1 { return }
        communicator.abortOnError("broadcasting the initial model from rank 0") {
            try communicator.broadcast(UnsafeMutableBufferPointer(start: store.values, count: store.parameterCount))
            store.parametersChanged()
            try communicator.broadcast(UnsafeMutableBufferPointer(start: store.bufferValues, count: store.bufferCount))
            try communicator.broadcast(UnsafeMutableBufferPointer(start: store.counterValues, count: store.counters.count))
        }
        verifyIdentical(store, communicator, what: "after the initial broadcast")
    }

    /// Compares a checksum of the parameters and buffers across ranks; aborts on a mismatch.
    public static func verifyIdentical(_ store: ParameterStore, _ communicator: Communicator = .world, what: String) {
        if communicator.size == 1 { return }
        let local = Int64(bitPattern: checksum(store))
        var minimum = [local], maximum = [local]
        communicator.abortOnError("comparing model checksums \(what)") {
            try communicator.allreduceMin(&minimum)
            try communicator.allreduceMax(&maximum)
        }
        if minimum[0] != maximum[0] {
            communicator.abort("model replicas differ \(what): this rank's checksum is \(String(UInt64(bitPattern: local), radix: 16))")
        }
    }

    /// FNV-1a over the bit patterns of parameters, buffers and counters.
    public static func checksum(_ store: ParameterStore) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        @inline(__always) func add(_ word: UInt64) {
            hash ^= word
            hash = hash &* 0x0000_0100_0000_01B3
        }
        for i in 0..<store.parameterCount { add(UInt64(store.values[i].bitPattern)) }
        for i in 0..<store.bufferCount { add(UInt64(store.bufferValues[i].bitPattern)) }
        for i in 0..<store.counters.count { add(UInt64(bitPattern: store.counterValues[i])) }
        return hash
    }
}
