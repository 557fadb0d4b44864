import Foundation
import MPI
import VAVLDistributed

/// `mpirun -np 2 vavl-mpi-tests stall`: steps of 50 ms of work and one statistics allreduce,
/// each timed by the watchdog (factor 5, floor 3 s, well above a step on a busy machine); in step 8 the last rank sleeps for two
/// minutes inside the step while the others wait in the next allreduce. A watchdog must end
/// the job (exit 75, message naming a rank, the step and the operation) within a few
/// seconds; reaching the end of the loop is a failure.
func runStall(arguments: [String]) -> Never {
    let collectives = MPICollectives(communicator: world)
    let settings = Watchdog.Settings(factor: 5, minimumSeconds: 3)
    // The arithmetic of the limit, checked before the live run.
    require(settings.limit(median: nil, afterPause: false) == 15, "no history: factor × floor")
    require(settings.limit(median: 0.1, afterPause: false) == 3, "the floor wins over 5 × 0.1 s")
    require(settings.limit(median: 2, afterPause: false) == 10, "factor × median")
    require(settings.limit(median: 2, afterPause: true) == 50, "the first step of an epoch gets factor × the limit")
    require(Watchdog.Settings(factor: 0, minimumSeconds: 60).limit(median: 1, afterPause: false) == nil, "factor 0 disables")
    require(Watchdog.Settings(factor: 10, minimumSeconds: 0).limit(median: nil, afterPause: false) == nil,
            "no floor and no history: not watched")
    let watchdog = Watchdog.start(rank: world.rank, size: world.size, settings: settings)!
    let sleeper = world.size - 1
    for step in 0..<40 {
        watchdog.beginStep("test step \(step)")
        usleep(50_000)
        var statistics = [Double](repeating: Double(world.rank), count: 16)
        collectives.sum(&statistics)
        if world.rank == sleeper && step == 8 {
            CurrentOperation.set("a deliberate 120 s sleep inside test step 8 (the stall test)")
            sleep(120)
        }
        watchdog.endStep()
    }
    print("rank \(world.rank): FAIL: the stalled rank was not detected")
    exit(0)
}
