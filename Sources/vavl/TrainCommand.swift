import ArgumentParser
import BLAS
import Foundation
import MPI
import VAVLCore
import VAVLData
import VAVLDistributed
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
    @Option(help: "categorical, dimensional or sentiment (checked against the corpus).") var task: PredictionTask?
    @Option(help: "Resume from a checkpoint file or a run folder (its checkpoint-last.h5).") var resume: String?
    @Option(help: "Progress: live (one line rewritten in place; the default on a terminal), plain (a line every --log-every batches; the default without a terminal and under mpirun, whose ranks always get a pseudo-terminal) or none.")
    var progress: ProgressStyle?
    @Flag(help: "Same as --progress plain.") var plain = false
    @OptionGroup var flags: TrainingFlags

    func run() throws {
        let world = Communicator.world
        // The user's errors (flags, config, corpus, run folder) end every rank with one line.
        let (configuration, options) = world.agreeOnSetUp { try resolve(world) }
        let stopped = world.abortOnError { () -> Bool in
            let trainer = try Trainer(configuration: configuration, options: options, communicator: world)
            trainer.run()
            return trainer.stoppedToResume
        }
        if stopped { throw ExitCode(Trainer.stoppedToResumeStatus) }
    }

    func resolve(_ world: Communicator) throws -> (VAVLConfiguration, TrainingOptions) {
        try flags.resolve(corpus: corpus, out: out, task: task, resume: resume,
                          progress: progress ?? (plain ? .plain : ProgressStyle.default), world)
    }
}

/// The output folder must exist and take a file before any training starts, so a full disk
/// or a read-only path fails in seconds, not after the first epoch. It belongs to one
/// training at a time (a lock held for the whole run), and a folder that already holds a run
/// is continued with --resume or replaced with --overwrite, never silently mixed.
enum OutputFolder {
    /// The lock files' descriptors, held (and so the locks) until the process ends.
    nonisolated(unsafe) private static var held: [Int32] = []

    static func prepare(_ path: String, rank: Int, resuming: Bool = false, overwrite: Bool = false) throws {
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
        try lock(path)
        // Temporary files of a training killed while it wrote (kill -9, a lost node): with
        // the folder locked no training is writing here, so every one is stale.
        for name in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        where (name.hasPrefix("checkpoint-") || name.hasPrefix("config.json")) && name.contains(".partial-") {
            try? FileManager.default.removeItem(atPath: (path as NSString).appendingPathComponent(name))
        }
        let last = (path as NSString).appendingPathComponent("checkpoint-last.h5")
        if FileManager.default.fileExists(atPath: last) && !resuming {
            guard overwrite else {
                throw ValidationError("\(path) already holds a run (checkpoint-last.h5): continue it with --resume \(path), or replace it with --overwrite")
            }
            let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
            for name in names where (name.hasPrefix("checkpoint-") && name.hasSuffix(".h5")) || name == "metrics.jsonl" || name == "config.json" {
                try? FileManager.default.removeItem(atPath: (path as NSString).appendingPathComponent(name))
            }
        }
    }

    /// `flock` on DIR/.vavl-lock for the rest of the process; another process holding it
    /// (a second training on the same folder) is an error naming it.
    private static func lock(_ path: String) throws {
        let lockPath = (path as NSString).appendingPathComponent(".vavl-lock")
        let descriptor = open(lockPath, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw ValidationError("cannot open the lock file \(lockPath): \(String(cString: strerror(errno)))")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: lockPath, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            close(descriptor)
            throw ValidationError("\(path) is in use by another training run" + (holder.isEmpty ? "" : " (\(holder))"))
        }
        let holder = "pid \(getpid()) on \(ProcessInfo.processInfo.hostName)\n"
        _ = ftruncate(descriptor, 0)
        _ = holder.withCString { write(descriptor, $0, strlen($0)) }
        held.append(descriptor)
    }
}

/// How training shows its progress.
enum ProgressStyle: String, ExpressibleByArgument, CaseIterable {
    case live, plain, none

    /// Live on a terminal, plain otherwise — and plain under a launcher (mpirun and srun give
    /// ranks pseudo-terminals, and `mpirun … > log` would fill the log with rewritten lines).
    static var `default`: ProgressStyle {
        let environment = ProcessInfo.processInfo.environment
        let launched = environment["OMPI_COMM_WORLD_SIZE"] != nil || environment["PMI_SIZE"] != nil || environment["SLURM_STEP_ID"] != nil
        return isatty(fileno(stdout)) != 0 && !launched ? .live : .plain
    }
}
