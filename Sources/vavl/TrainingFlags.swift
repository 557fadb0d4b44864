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
    @OptionGroup var frameLimit: FrameLimitOption
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
    @Flag(help: "Start a new run in an output folder that already holds one (its checkpoints and metrics are removed).")
    var overwrite = false
    @Option(help: "Also write checkpoint-last.h5 every N iterations (0: at epoch ends only); bounds what a hard kill loses.")
    var checkpointEvery = 0
    @Option(help: "Floats per gradient allreduce bucket.") var bucketSize = 4 << 20
    @Option(help: "Compute threads per rank (default: cores ÷ ranks on this host).") var threads: Int?
    @Option(help: "Abort the job when a step takes this many times the recent median step (0 = no stall watchdog).") var stallFactor = 10.0
    @Option(help: "The stall watchdog never fires before this many seconds (0 = no floor).") var stallMinimumSeconds = 60.0
    @Flag(help: "Skip the per-epoch development evaluation.") var noEvaluation = false
    @Option(help: "Without a terminal, print a progress line every N batches.") var logEvery = 50
    @Flag(help: "Print nothing but errors.") var quiet = false
    @Option(help: ArgumentHelp("Set a configuration key (`vavl summary --keys`), e.g. lr=1e-4; repeatable. On --resume the only way to change a key the checkpoint fixes for training (lr, dropout, batch_size, …); the model's keys never change.", valueName: "key=value"))
    var override: [String] = []

    /// The configuration (task, dimensions and labels from the corpus) and the options;
    /// sets the BLAS threads and prepares the output folder.
    func resolve(corpus: String, out: String, task: PredictionTask?, resume: String?, progress: ProgressStyle,
                 _ world: Communicator) throws -> (VAVLConfiguration, TrainingOptions) {
        try frameLimit.apply()
        if let threads { BLAS.threadCount = threads }
        var configuration: VAVLConfiguration
        var stored: (path: String, configuration: VAVLConfiguration)?
        if let resume {
            // A resumed run is the checkpoint's run: its configuration, with only the changes
            // a resume may make (DESIGN §6, resume rules): the keys a --config file holds,
            // the model of a --model preset (which must agree) and the typed flags, over it.
            let path = Trainer.checkpointPath(resume)
            stored = (path, try Checkpoint.configuration(path))
        }
        configuration = try modelOptions.apply(to: stored.map { try modelOptions.resumeBase($0.configuration) } ?? modelOptions.base())
        for setting in override {
            let parts = setting.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw ValidationError("--override needs KEY=VALUE, got '\(setting)'") }
            do {
                configuration = try configuration.setting(parts[0], json: parts[1], source: "--override")
            } catch let error as ConfigurationError {
                throw ValidationError(error.description)
            }
        }
        let corpusFile = try Corpus.open(corpus)
        if let task, task != corpusFile.task {
            throw ValidationError("--task \(task.rawValue) but \(corpus) is a \(corpusFile.task.rawValue) corpus")
        }
        do {
            // On resume the flipped columns are the checkpoint's unless --flip-labels names them.
            let flipped = flipLabels.map { Set($0.split(separator: ",").map(String.init)) }
                ?? Set(stored?.configuration.labelTransform.filter(\.flip).map(\.name) ?? [])
            try configuration.adopt(corpusFile, flippedLabels: flipped)
        } catch let error as CorpusConfigurationError {
            throw ValidationError("\(error)")
        }
        // Flags the user typed override the config file; absent ones keep its values.
        if let sampler { configuration.sampler = sampler }
        if let batchnorm { configuration.batchnorm = batchnorm }
        configuration = try validated(configuration)
        try ensureFitsInMemory(configuration, training: true, source: "the configuration")
        var resumeChanges: [ResumeChange] = []
        if let stored {
            resumeChanges = try Self.checkResume(configuration, against: stored.configuration, path: stored.path,
                                 overridden: Set(override.compactMap { $0.split(separator: "=").first.map(String.init) }),
                                 say: world.rank == 0 && !quiet ? { print($0) } : { _ in })
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
        options.resumeChanges = resumeChanges
        options.partitionFile = partition
        options.keepCheckpoints = keep
        options.checkpointEvery = checkpointEvery
        options.bucketSize = bucketSize
        options.evaluateEachEpoch = !noEvaluation
        options.quiet = quiet
        guard keep >= 0, checkpointEvery >= 0, bucketSize >= 1024, bucketSize <= 1 << 30, logEvery >= 1, lengthBuckets >= 0,
              (threads ?? 1) >= 1, (threads ?? 1) <= 1024, (maxIterations ?? 0) >= 0 else {
            throw ValidationError("--keep ≥ 0, --bucket-size 1024…2³⁰ floats, --log-every ≥ 1, --length-buckets ≥ 0, "
                                  + "--threads 1…1024 and --max-iterations ≥ 0 are required")
        }
        guard stallFactor == 0 || stallFactor > 1, stallMinimumSeconds >= 0 else {
            throw ValidationError("--stall-factor must be 0 (off) or above 1, --stall-minimum-seconds at least 0")
        }
        options.stallFactor = stallFactor
        options.stallMinimumSeconds = stallMinimumSeconds
        options.liveProgress = progress == .live
        options.logEvery = progress == .none ? Int.max : logEvery
        try OutputFolder.prepare(out, rank: world.rank, resuming: resume != nil, overwrite: overwrite)
        return (configuration, options)
    }

    /// A resume may change the schedule (epochs) freely, and keys of the `overridable` rule
    /// only through `--override`; the model's keys never. The corpus, named again, must be
    /// the one the checkpoint was trained on as far as the model sees it (dimensions, task,
    /// label names). Every change is printed and returned (the `resume` record lists them).
    static func checkResume(_ configuration: VAVLConfiguration, against stored: VAVLConfiguration, path: String,
                            overridden: Set<String>, say: (String) -> Void) throws -> [ResumeChange] {
        var refused: [String] = [], needsOverride: [String] = [], accepted: [ResumeChange] = []
        for (field, before, now) in configuration.changes(from: stored) {
            let change = "\(field.key) \(before) → \(now)"
            switch field.resume {
            case .fixed: refused.append(change)
            case .overridable where !overridden.contains(field.key): needsOverride.append(change)
            case .overridable, .free:
                say("resume: \(change)")
                accepted.append(ResumeChange(key: field.key, stored: before, now: now, byOverride: overridden.contains(field.key)))
            }
        }
        if !refused.isEmpty {
            throw ValidationError("\(path): the checkpoint's model cannot change on resume (from flags or the corpus): "
                                  + refused.joined(separator: ", "))
        }
        if !needsOverride.isEmpty {
            throw ValidationError("\(path): resuming keeps the checkpoint's training settings; to change them say so with "
                                  + "--override KEY=VALUE: " + needsOverride.joined(separator: ", "))
        }
        return accepted
    }
}
