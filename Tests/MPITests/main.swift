// Two-rank tests, run by Scripts/test.sh as `mpirun -np 2 vavl-mpi-tests [--fail-rank R]`.
// Every check failure aborts the whole job (MPI_Abort) with a message naming the rank and
// the check, so mpirun exits non-zero; success prints one line per check on rank 0.
import Foundation
import BLAS
import CMachine
import MPI

#if VAVL_REQUIRES_AVX2
vavl_require_avx2_fma()
#endif
BLAS.ensureFastKernels()
let world = Communicator.world
let arguments = CommandLine.arguments

func require(_ condition: Bool, _ what: String) {
    if !condition { world.abort("check failed: \(what)") }
}

func passed(_ name: String) {
    if world.rank == 0 { print("ok  \(name)") }
}

// Harness self-test: one rank fails while the others wait in a collective. The job must
// come down at once (mpirun exits non-zero), not hang in the allreduce.
if let index = arguments.firstIndex(of: "--fail-rank"), index + 1 < arguments.count, let failing = Int(arguments[index + 1]) {
    if world.rank == failing {
        Thread.sleep(forTimeInterval: 0.5)
        world.abort("deliberate failure for the harness self-test (the others wait in MPI_Allreduce)")
    }
    var values: [Float] = [1, 2, 3]
    world.abortOnError { try world.allreduceSum(&values) }
    Thread.sleep(forTimeInterval: 60)  // never reached in a correct harness: the job is aborted
    exit(0)
}

switch arguments.dropFirst().first {
case "equivalence":
    runEquivalence(arguments: Array(arguments.dropFirst(2)))
case "corrupt":
    runCorruptUtterance(arguments: Array(arguments.dropFirst(2)))
case "stall": runStall(arguments: Array(arguments.dropFirst(2)))  // Tests/MPITests/Stall.swift (cluster tests)
case "compare-checkpoints": runCompareCheckpoints(arguments: Array(arguments.dropFirst(2)))  // one process (cluster tests)
default:
    runBasics()
}

func runBasics() {
    require(world.size >= 2, "needs at least 2 ranks, got \(world.size)")
    let size = world.size
    let rank = world.rank

    // MARK: - broadcast
    do {
        var floats: [Float] = rank == 0 ? [1.5, -2.25, 3e-8, .pi] : [0, 0, 0, 0]
        var doubles: [Double] = rank == 0 ? [1e300, -0.1] : [7, 7]
        var integers: [Int64] = rank == 0 ? [Int64.max, -5, 0] : [1, 1, 1]
        world.abortOnError {
            try world.broadcast(&floats)
            try world.broadcast(&doubles)
            try world.broadcast(&integers)
        }
        require(floats == [1.5, -2.25, 3e-8, .pi], "broadcast Float on rank \(rank): \(floats)")
        require(doubles == [1e300, -0.1], "broadcast Double on rank \(rank): \(doubles)")
        require(integers == [Int64.max, -5, 0], "broadcast Int64 on rank \(rank): \(integers)")
        // Broadcast from the last rank, not only rank 0.
        var fromLast: [Int64] = [Int64(rank * 10 + 3)]
        world.abortOnError { try world.broadcast(&fromLast, root: size - 1) }
        require(fromLast == [Int64((size - 1) * 10 + 3)], "broadcast from rank \(size - 1) on rank \(rank)")
        passed("broadcast Float, Double, Int64 from rank 0 and from the last rank")
    }

    // MARK: - allreduce
    do {
        let count = 100_003  // odd, larger than one eager message
        var floats = (0..<count).map { Float(rank + 1) * Float($0 % 97) }
        var doubles = (0..<count).map { Double(rank) + Double($0) * 0.5 }
        var integers = (0..<count).map { Int64(rank) * 1_000_000_007 + Int64($0) }
        world.abortOnError {
            try world.allreduceSum(&floats)
            try world.allreduceSum(&doubles)
            try world.allreduceSum(&integers)
        }
        let rankSum = size * (size + 1) / 2  // Σ (r + 1)
        let rankIndexSum = size * (size - 1) / 2  // Σ r
        for index in 0..<count {
            require(floats[index] == Float(rankSum) * Float(index % 97), "allreduce Float [\(index)] on rank \(rank)")
            require(doubles[index] == Double(rankIndexSum) + Double(size) * Double(index) * 0.5,
                    "allreduce Double [\(index)] on rank \(rank)")
            require(integers[index] == Int64(rankIndexSum) * 1_000_000_007 + Int64(size) * Int64(index),
                    "allreduce Int64 [\(index)] on rank \(rank)")
        }
        var maximum: [Int64] = [Int64(rank)], minimum: [Double] = [Double(rank) - 0.5]
        world.abortOnError {
            try world.allreduceMax(&maximum)
            try world.allreduceMin(&minimum)
        }
        require(maximum == [Int64(size - 1)] && minimum == [-0.5], "allreduce max/min on rank \(rank)")
        passed("in-place allreduce sum of \(count) Float, Double, Int64; max; min")
    }

    // MARK: - non-blocking allreduce
    do {
        var buckets = (0..<4).map { bucket in [Float](repeating: Float(rank + bucket), count: 1000 + bucket) }
        var pending: [PendingReduction] = []
        for bucket in 0..<buckets.count {
            let buffer = buckets[bucket].withUnsafeMutableBufferPointer { $0 }
            pending.append(world.abortOnError { try world.startAllreduceSum(buffer) })
        }
        for index in pending.indices { world.abortOnError { try pending[index].wait() } }
        for bucket in 0..<buckets.count {
            let expected = Float(size * (size - 1) / 2 + size * bucket)
            require(buckets[bucket].allSatisfy { $0 == expected }, "non-blocking allreduce bucket \(bucket) on rank \(rank)")
        }
        passed("non-blocking allreduce of 4 buckets")
    }

    world.abortOnError { try world.barrier() }
    passed("barrier")
}
