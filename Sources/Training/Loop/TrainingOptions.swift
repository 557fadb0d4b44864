import VAVLCore

/// Everything a training run needs besides the model configuration.
public struct TrainingOptions: Sendable {
    public var corpusPath: String
    public var outputDirectory: String
    /// Stop after this many global iterations (0 writes the initial model and stops).
    public var maxIterations: Int?
    public var policy: CompositionPolicy = .natural
    public var epochEnd: EpochEnd = .keep
    public var lengthBucketWindow = 0
    /// Synchronised BatchNorm (default) or DDP-style local statistics with rank 0's buffers
    /// broadcast every iteration.
    public var synchronizedBatchNorm = true
    public var nonFinitePolicy: NonFinitePolicy = .abort
    /// Epoch checkpoints kept besides `best` and `last`.
    public var keepCheckpoints = 3
    /// A checkpoint file, or a run folder whose `checkpoint-last.h5` is used.
    public var resume: String?
    /// What the resume changed in the checkpoint's configuration, for the `resume` record.
    public var resumeChanges: [ResumeChange] = []
    /// Floats per gradient allreduce bucket.
    public var bucketSize = 4 << 20
    /// Evaluate the development split after every epoch (model selection).
    public var evaluateEachEpoch = true
    /// Print a live progress line (a terminal) or plain lines every `logEvery` iterations
    /// (`Int.max`: no per-iteration lines).
    public var liveProgress = false
    public var logEvery = 50
    /// A partition file (authors' layout) reassigning the corpus's splits; nil = the corpus's own.
    public var partitionFile: String?
    /// Print nothing but errors (tests).
    public var quiet = false
    /// Stall watchdog (VAVLDistributed.Watchdog): abort the job when a step runs past
    /// max(stallMinimumSeconds, stallFactor × the recent median step); factor 0 disables it.
    public var stallFactor = 10.0
    public var stallMinimumSeconds = 60.0
    /// Also write `checkpoint-last.h5` every this many iterations (0: at epoch ends only), so a
    /// hard kill loses at most that much work.
    public var checkpointEvery = 0

    public init(corpusPath: String, outputDirectory: String) {
        self.corpusPath = corpusPath
        self.outputDirectory = outputDirectory
    }
}

/// One configuration value a resume changed (DESIGN §6, resume rules): a `free` key changed
/// by a flag, or an `overridable` one by `--override KEY=VALUE`.
public struct ResumeChange: Sendable, Equatable {
    public var key: String
    public var stored: String
    public var now: String
    public var byOverride: Bool

    public init(key: String, stored: String, now: String, byOverride: Bool) {
        self.key = key
        self.stored = stored
        self.now = now
        self.byOverride = byOverride
    }

    /// The `changes` entry of the `resume` record in metrics.jsonl.
    var record: [String: Any] { ["key": key, "from": stored, "to": now, "by": byOverride ? "override" : "flag"] }
}
