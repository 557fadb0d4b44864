import ArgumentParser
import BLAS
import Foundation
import MPI
import VAVLCore
import VAVLData
import VAVLTraining

/// The model and data-parallel training flags shared by `vavl train` and the training
/// experiments (`ablations`, `repeat`), declared once and resolved once, so the commands
/// cannot drift apart in what a flag means.
struct TrainingFlags: ParsableArguments {
    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Stop after N global iterations (0 writes the initial model).") var maxIterations: Int?
    @Option(help: "BatchNorm statistics: sync (over all ranks) or local (DDP). Default: the config's (sync).") var batchnorm: String?
    @Option(help: "Batch composition: natural or balanced. Default: the config's (natural).") var sampler: String?
    @Option(help: "Balanced shares of paired, audio-only and video-only utterances.") var shares = "0.5,0.25,0.25"
    @Option(help: "Last partial batch of an epoch: keep, drop or wrap.") var epochEnd = "keep"
    @Option(help: "Group utterances of similar length within windows of N batches (0 = off).") var lengthBuckets = 0
    @Option(help: "Non-finite loss: abort (default) or skip the phase update on every rank.") var nanPolicy = "abort"
    @Option(help: "Dimensional label columns to flip (lo + hi − y) before scaling, e.g. EmoAct.") var flipLabels: String?
    @Option(help: "A partition file in the authors' CSV layout (FileName, …, Split_Set) reassigning the corpus's splits.") var partition: String?
    @Option(help: "Epoch checkpoints to keep besides best and last.") var keep = 3
    @Option(help: "Floats per gradient allreduce bucket.") var bucketSize = 4 << 20
    @Option(help: "Compute threads per rank (default: cores ÷ ranks on this host).") var threads: Int?
    @Option(help: "Abort the job when a step takes this many times the recent median step (0 = no stall watchdog).") var stallFactor = 10.0
    @Option(help: "The stall watchdog never fires before this many seconds (0 = no floor).") var stallMinimumSeconds = 60.0
    @Flag(help: "Skip the per-epoch development evaluation.") var noEvaluation = false
    @Option(help: "Without a terminal, print a progress line every N batches.") var logEvery = 50
    @Flag(help: "Print nothing but errors.") var quiet = false

    /// The configuration (task, dimensions and labels from the corpus) and the options;
    /// sets the BLAS threads and prepares the output folder.
    func resolve(corpus: String, out: String, task: String?, resume: String?, liveProgress: Bool,
                 _ world: Communicator) throws -> (VAVLConfiguration, TrainingOptions) {
        if let threads { BLAS.threadCount = threads }
        var configuration = try modelOptions.resolve()
        let corpusFile = try Corpus.open(corpus)
        if let task, task != corpusFile.task.rawValue {
            throw ValidationError("--task \(task) but \(corpus) is a \(corpusFile.task.rawValue) corpus")
        }
        do {
            try configuration.adopt(corpusFile, flippedLabels: Set((flipLabels ?? "").split(separator: ",").map(String.init)))
        } catch let error as CorpusConfigurationError {
            throw ValidationError("\(error)")
        }
        // Flags the user typed override the config file; absent ones keep its values.
        if let sampler { configuration.sampler = sampler }
        if let batchnorm { configuration.batchnorm = batchnorm }
        if let (key, problem) = configuration.problems().first {
            throw ValidationError("invalid configuration: '\(key)': \(problem)")
        }
        let batchnorm = configuration.batchnorm, sampler = configuration.sampler
        var options = TrainingOptions(corpusPath: corpus, outputDirectory: out)
        options.maxIterations = maxIterations
        switch batchnorm {
        case "sync": options.synchronizedBatchNorm = true
        case "local": options.synchronizedBatchNorm = false
        default: throw ValidationError("--batchnorm must be sync or local")
        }
        switch sampler {
        case "natural": options.policy = .natural
        case "balanced":
            let parts = shares.split(separator: ",").compactMap { Double($0) }
            guard parts.count == 3, parts.allSatisfy({ $0 >= 0 }), parts.reduce(0, +) > 0 else {
                throw ValidationError("--shares needs three non-negative numbers, e.g. 0.5,0.25,0.25")
            }
            options.policy = .balanced(paired: parts[0], audioOnly: parts[1], videoOnly: parts[2])
        default: throw ValidationError("--sampler must be natural or balanced")
        }
        guard let end = EpochEnd(rawValue: epochEnd) else { throw ValidationError("--epoch-end must be keep, drop or wrap") }
        options.epochEnd = end
        options.lengthBucketWindow = lengthBuckets
        guard let policy = NonFinitePolicy(rawValue: nanPolicy) else { throw ValidationError("--nan-policy must be abort or skip") }
        options.nonFinitePolicy = policy
        options.resume = resume
        options.partitionFile = partition
        options.keepCheckpoints = keep
        options.bucketSize = bucketSize
        options.evaluateEachEpoch = !noEvaluation
        options.quiet = quiet
        guard keep >= 0, bucketSize >= 1024, bucketSize <= 1 << 30, logEvery >= 1, lengthBuckets >= 0,
              (threads ?? 1) >= 1, (threads ?? 1) <= 1024, (maxIterations ?? 0) >= 0 else {
            throw ValidationError("--keep ≥ 0, --bucket-size 1024…2³⁰ floats, --log-every ≥ 1, --length-buckets ≥ 0, "
                                  + "--threads 1…1024 and --max-iterations ≥ 0 are required")
        }
        guard stallFactor == 0 || stallFactor > 1, stallMinimumSeconds >= 0 else {
            throw ValidationError("--stall-factor must be 0 (off) or above 1, --stall-minimum-seconds at least 0")
        }
        options.stallFactor = stallFactor
        options.stallMinimumSeconds = stallMinimumSeconds
        options.liveProgress = liveProgress
        options.logEvery = logEvery
        try OutputFolder.prepare(out, rank: world.rank)
        return (configuration, options)
    }
}
