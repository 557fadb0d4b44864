import ArgumentParser
import BLAS
import MPI
import VAVLCore
import VAVLTraining

/// The flags of `vavl train` that the training experiments (`ablations`, `repeat`) take:
/// the model options and the data-parallel training flags, with the same names, defaults
/// and meaning. They are handed to a `TrainCommand` and resolved by its own `resolve`, so
/// the two commands cannot drift apart in what a flag does. (Using `TrainCommand` itself as
/// an option group would put `train` into the usage lines ArgumentParser prints on errors,
/// since it is also a subcommand.) `--resume` and `--task` are not offered: an interrupted
/// experiment continues by running it again, and the task is the corpus's.
struct ExperimentTrainingOptions: ParsableArguments {
    @Option(help: "The corpus (HDF5, SPEC §5).") var corpus: String
    @Option(help: "Output folder of the experiment (one subfolder per run).") var out: String
    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Stop each run after N global iterations.") var maxIterations: Int?
    @Option(help: "BatchNorm statistics: sync (over all ranks, default) or local (DDP).") var batchnorm = "sync"
    @Option(help: "Batch composition: natural or balanced.") var sampler = "natural"
    @Option(help: "Balanced shares of paired, audio-only and video-only utterances.") var shares = "0.5,0.25,0.25"
    @Option(help: "Last partial batch of an epoch: keep, drop or wrap.") var epochEnd = "keep"
    @Option(help: "Group utterances of similar length within windows of N batches (0 = off).") var lengthBuckets = 0
    @Option(help: "Non-finite loss: abort (default) or skip the phase update on every rank.") var nanPolicy = "abort"
    @Option(help: "Dimensional label columns to flip (lo + hi − y) before scaling, e.g. EmoAct.") var flipLabels: String?
    @Option(help: "A partition file in the authors' CSV layout (FileName, …, Split_Set) reassigning the corpus's splits.") var partition: String?
    @Option(help: "Epoch checkpoints to keep per run besides best and last.") var keep = 3
    @Option(help: "Floats per gradient allreduce bucket.") var bucketSize = 4 << 20
    @Option(help: "OpenBLAS threads per rank (default: cores ÷ ranks on this host).") var threads: Int?
    @Option(help: "Abort the job when a step takes this many times the recent median step (0 = no stall watchdog).") var stallFactor = 10.0
    @Option(help: "The stall watchdog never fires before this many seconds (0 = no floor).") var stallMinimumSeconds = 60.0
    @Flag(help: "Skip the per-epoch development evaluation (each run keeps its last weights).") var noEvaluation = false
    @Option(help: "Print a progress line every N batches.") var logEvery = 50
    @Flag(help: "Print only the experiment's own lines and errors, not the runs' progress.") var quiet = false

    /// A `vavl train` invocation with these flags.
    func trainCommand() throws -> TrainCommand {
        var train = try TrainCommand.parse(["--corpus", corpus, "--out", out])
        train.modelOptions = modelOptions
        train.maxIterations = maxIterations
        train.batchnorm = batchnorm
        train.sampler = sampler
        train.shares = shares
        train.epochEnd = epochEnd
        train.lengthBuckets = lengthBuckets
        train.nanPolicy = nanPolicy
        train.flipLabels = flipLabels
        train.partition = partition
        train.keep = keep
        train.bucketSize = bucketSize
        train.threads = threads
        train.stallFactor = stallFactor
        train.stallMinimumSeconds = stallMinimumSeconds
        train.noEvaluation = noEvaluation
        train.logEvery = logEvery
        train.plain = true
        train.quiet = quiet
        return train
    }

    /// The base configuration and options, resolved as `vavl train` resolves them (task,
    /// dimensions and labels from the corpus; the output folder prepared).
    func resolve(_ world: Communicator) throws -> (VAVLConfiguration, TrainingOptions) {
        if let threads { BLAS.threadCount = threads }
        let (configuration, resolved) = try trainCommand().resolve(world)
        var options = resolved
        options.liveProgress = false  // several runs: plain progress lines, not one live line
        return (configuration, options)
    }
}
