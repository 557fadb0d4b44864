import ArgumentParser
import BLAS
import CMachine
import Foundation
import MPI
import VAVLCore
import VAVLData
import VAVLTraining

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train VAVL with Algorithm 1, as one process or as every rank of `mpirun -np N`.",
        discussion: """
        The global batch (--batch-size) is split over the ranks; the update equals one process's \
        on the same global batch (synchronised BatchNorm, global loss normalisation). Rank 0 \
        writes DIR/checkpoint-{last,best,epoch-NNN}.h5 and DIR/metrics.jsonl.

        SIGUSR1 (Slurm's --signal before a time limit or preemption), SIGTERM and Ctrl-C stop         every rank after the same iteration, with checkpoint-last.h5 written there, and exit         with status 85 ("stopped, resume me": continue with --resume DIR). A second Ctrl-C         ends the process at once. --checkpoint-every N also bounds what a hard kill loses.
        """)

    @Option(help: "The corpus (HDF5, DESIGN §5).") var corpus: String
    @Option(help: "Output folder for checkpoints and metrics.") var out: String
    @Option(help: "categorical, dimensional or sentiment (checked against the corpus).") var task: String?
    @Option(help: "Resume from a checkpoint file or a run folder (its checkpoint-last.h5).") var resume: String?
    @Flag(help: "Print plain progress lines even on a terminal.") var plain = false
    @OptionGroup var flags: TrainingFlags

    func run() throws {
        let world = Communicator.world
        let stopped = world.abortOnError { () -> Bool in
            let (configuration, options) = try resolve(world)
            let trainer = try Trainer(configuration: configuration, options: options, communicator: world)
            vavl_install_stop_signals()
            trainer.run()
            return trainer.stoppedToResume
        }
        if stopped { throw ExitCode(Trainer.stoppedToResumeStatus) }
    }

    func resolve(_ world: Communicator) throws -> (VAVLConfiguration, TrainingOptions) {
        try flags.resolve(corpus: corpus, out: out, task: task, resume: resume,
                          liveProgress: isatty(fileno(stdout)) != 0 && !plain, world)
    }
}

/// The output folder must exist and take a file before any training starts, so a full disk
/// or a read-only path fails in seconds, not after the first epoch.
enum OutputFolder {
    static func prepare(_ path: String, rank: Int) throws {
        guard rank == 0 else { return }
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw ValidationError("cannot create the output folder \(path): \(error.localizedDescription)")
        }
        let probe = (path as NSString).appendingPathComponent(".write-probe-\(getpid())")
        let bytes = Data(repeating: 0, count: 1 << 20)
        guard FileManager.default.createFile(atPath: probe, contents: bytes) else {
            throw ValidationError("the output folder \(path) is not writable (or the disk is full)")
        }
        try? FileManager.default.removeItem(atPath: probe)
    }
}
