import ArgumentParser
import Foundation
import MPI
import VAVLCore
import VAVLData
import VAVLExperiments
import VAVLTraining

extension VAVLData.Modality: ExpressibleByArgument {}
extension ExperimentSystem: ExpressibleByArgument {}

/// `vavl experiment …`: the paper's experiments, one command each (issue M9).
struct ExperimentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "experiment",
        abstract: "The paper's experiments: robustness to missing frames, shared-embedding distance, ablations, repeated runs with t-tests.",
        discussion: """
        Every command writes JSON results that `vavl report` turns into one Markdown report. \
        robustness, embedding, ablations and repeat also run as every rank of `mpirun -np N` \
        (the ranks share the work; rank 0 alone prints and writes).
        """,
        subcommands: [RobustnessCommand.self, EmbeddingCommand.self, AblationsCommand.self, RepeatCommand.self,
                      PartitionsCommand.self, CompareCommand.self]
    )
}

/// Prints on rank 0 only.
func rankZeroPrinter(_ world: Communicator) -> (String) -> Void {
    { text in
        guard world.rank == 0 else { return }
        print(text)
        fflush(stdout)
    }
}

// MARK: - robustness

struct RobustnessCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "robustness",
        abstract: "Scores as p = 0, 10, …, 90 % of one modality's frames are zeroed (paper Figs. 2–3): table, JSON and SVG plot.",
        discussion: """
        For each p, round(p·T/100) seeded-random frames of every utterance's MODALITY are zeroed \
        after normalisation and the audio-visual head is scored; the unimodal head of the other \
        modality is the reference line. y axis: F1-macro (categorical), mean CCC (dimensional), \
        MAE (sentiment). Writes DIR/robustness-MODALITY.{json,svg,txt}.
        """)

    @OptionGroup var checkpoint: CheckpointOption
    @OptionGroup var precision: PrecisionOption
    @OptionGroup var frameLimit: FrameLimitOption
    @Option(help: "The corpus to score.") var corpus: String
    @Option(help: "train, dev or test.") var split: Split = .test
    @Option(help: "The modality whose frames are masked: audio or video.") var modality: VAVLData.Modality
    @Option(help: "Seed of the masked-frame choice.") var seed: UInt64 = 0
    @Option(help: "Masking levels in percent, comma-separated (default 0,10,…,90).") var percents: String?
    @Option(help: "A partition file (authors' CSV layout) reassigning the corpus's splits.") var partition: String?
    @Option(help: "Output folder.") var out: String

    var levels: [Double] {
        get throws {
            guard let percents else { return RobustnessSweep.defaultPercents }
            let values = try percents.split(separator: ",").map {
                guard let value = Double($0.trimmingCharacters(in: .whitespaces)), (0...100).contains(value) else {
                    throw ValidationError("--percents takes percentages in 0…100, got '\($0)'")
                }
                return value
            }
            guard !values.isEmpty else { throw ValidationError("--percents needs at least one level") }
            return values
        }
    }

    func validate() throws { _ = try levels }

    func run() throws {
        let world = Communicator.world
        let say = rankZeroPrinter(world)
        world.abortOnError {
            try frameLimit.apply()
            let levels = try self.levels
            let trained = try TrainedModel(checkpoint: checkpoint.resolved(announce: Communicator.world.rank == 0), precision: precision.value)
            let corpusFile = try Corpus.open(corpus)
            let splits = try partition.map { try SplitAssignment(partitionFile: $0, corpus: corpusFile) }
            let sweep = try RobustnessSweep.run(trained, corpus: corpusFile, split: split, modality: modality, seed: seed,
                                                percents: levels, communicator: world, splits: splits) { percent, scores in
                let metric = TaskMetrics.primary(trained.configuration.task)
                say(String(format: "masked %@ %3.0f %%: audio-visual %@ %.4f", modality.rawValue, percent,
                           TaskMetrics.label(metric), scores.metrics[metric] ?? .nan))
            }
            guard world.rank == 0 else { return }
            let json = try sweep.write(to: out)
            print(sweep.table)
            print("wrote \(json), \((out as NSString).appendingPathComponent(sweep.plotFileName))")
        }
    }
}

extension RobustnessSweep {
    var plotFileName: String { "robustness-\(maskedModality).svg" }
}

// MARK: - embedding

struct EmbeddingCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embedding",
        abstract: "Mean cosine distance between the shared representations r_a and r_v of each paired utterance (paper Fig. 4).",
        discussion: """
        r_m = mean over frames of LayerNorm(shared(branch_m(x)) + branch_m(x)), in eval mode. \
        Prints mean, sample std and quartiles of 1 − cos(r_a, r_v), and the mean over mismatched \
        pairs (r_a and r_v of different utterances) as a yardstick.
        """)

    @OptionGroup var checkpoint: CheckpointOption
    @OptionGroup var precision: PrecisionOption
    @OptionGroup var frameLimit: FrameLimitOption
    @Option(help: "The corpus to analyse.") var corpus: String
    @Option(help: "train, dev or test.") var split: Split = .test
    @Option(help: "A partition file (authors' CSV layout) reassigning the corpus's splits.") var partition: String?
    @Option(help: "Write the result as JSON here (a .txt with the table goes next to it).") var out: String?

    func run() throws {
        let world = Communicator.world
        world.abortOnError {
            try frameLimit.apply()
            let trained = try TrainedModel(checkpoint: checkpoint.resolved(announce: Communicator.world.rank == 0), precision: precision.value)
            let corpusFile = try Corpus.open(corpus)
            let splits = try partition.map { try SplitAssignment(partitionFile: $0, corpus: corpusFile) }
            let analysis = try EmbeddingAnalysis.run(trained, corpus: corpusFile, split: split, communicator: world, splits: splits)
            guard world.rank == 0 else { return }
            print(analysis.table)
            if let out {
                let folder = (out as NSString).deletingLastPathComponent
                if !folder.isEmpty { try ExperimentFile.makeDirectory(folder) }
                try ExperimentFile.write(analysis, to: out)
                try ExperimentFile.write(text: analysis.table + "\n", to: (out as NSString).deletingPathExtension + ".txt")
                print("wrote \(out)")
            }
        }
    }
}

// MARK: - ablations

/// The systems set the ablation switches themselves: a base configuration with one already on
/// (from the flags or the --config file) would make "vavl" an ablation and mislabel results.
func rejectAblationSwitches(_ training: ExperimentTrainingOptions) throws {
    let configuration = try training.modelOptions.resolve()
    var switches: [String] = []
    if !configuration.residual { switches.append("--no-residual") }
    if configuration.alpha == 0 { switches.append("--alpha 0") }
    if !configuration.audioVisualHead { switches.append("--no-av-head") }
    if !switches.isEmpty {
        throw ValidationError("\(switches.joined(separator: ", ")): the experiments train the ablations as systems; choose them with --system (repeat) or --systems (ablations)")
    }
}

struct AblationsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ablations",
        abstract: "Train and score VAVL, no-residual, no-reconstruction, no-av-head and the unimodal baselines (paper Table III).",
        discussion: """
        Every system is trained with the same corpus, split assignment, seed and training flags \
        (those of `vavl train`), into OUT/<system>/, and scored on the test split. The unimodal \
        baselines are one branch with blocks_m + blocks_s Conformer blocks (5 at the paper's \
        sizes) → mean pool → Linear(dim→dim) → ReLU → Dropout → Linear(dim→out). Writes \
        OUT/ablations.{json,md} and one table per head, OUT/ablations-<head>.{json,md}. A system \
        whose OUT/<system>/run.json matches the configuration is reused, not retrained.
        """)

    @OptionGroup(title: "Training options (as vavl train)") var training: ExperimentTrainingOptions
    @Option(help: "Systems to train, comma-separated (default: vavl,no-residual,no-reconstruction,no-av-head,unimodal-audio,unimodal-video).")
    var systems: String?

    func validate() throws {
        _ = try parseSystems(systems)
        try rejectAblationSwitches(training)
    }

    func run() throws {
        let world = Communicator.world
        let say = rankZeroPrinter(world)
        let (chosen, (configuration, options)) = world.agreeOnSetUp {
            (try parseSystems(systems) ?? AblationStudy.defaultSystems, try training.resolve(world))
        }
        world.abortOnError {
            let study = try AblationStudy.run(configuration: configuration, options: options, directory: training.out,
                                              systems: chosen, communicator: world, log: say)
            guard world.rank == 0 else { return }
            let json = try study.write(to: training.out)
            print(study.table)
            print("wrote \(json) and \((training.out as NSString).appendingPathComponent("ablations.md"))")
        }
    }
}

func parseSystems(_ text: String?) throws -> [ExperimentSystem]? {
    guard let text else { return nil }
    let systems = try text.split(separator: ",").map { name -> ExperimentSystem in
        guard let system = ExperimentSystem(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
            throw ValidationError("unknown system '\(name)' (\(ExperimentSystem.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        return system
    }
    guard !systems.isEmpty, Set(systems).count == systems.count else { throw ValidationError("--systems: give each system once") }
    return systems
}

// MARK: - repeat

struct RepeatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "repeat",
        abstract: "Train and score one system over five seeds or five partition files; mean ± std per metric and head.",
        discussion: """
        --seeds 1,2,3,4,5 trains with each seed (OUT/seed-<n>/); --partitions p1.csv,… trains once \
        per partition file in the authors' layout, which reassigns the corpus's splits \
        (OUT/partition-<i>/; make them with `vavl experiment partitions`). Scores are on each \
        run's test split; OUT/repeat.{json,md} hold mean ± sample std (ddof 1). Compare two \
        systems with `vavl experiment compare A/repeat.json B/repeat.json`. Finished runs \
        (OUT/…/run.json with the same configuration) are reused, so an interrupted series continues.
        """)

    @OptionGroup(title: "Training options (as vavl train)") var training: ExperimentTrainingOptions
    @Option(help: "vavl, no-residual, no-reconstruction, no-av-head, unimodal-audio or unimodal-video.") var system: ExperimentSystem = .vavl
    @Option(help: "Seeds, comma-separated, e.g. 1,2,3,4,5.") var seeds: String?
    @Option(help: "Partition files, comma-separated.") var partitions: String?

    var seedList: [UInt64] {
        get throws {
            try (seeds ?? "").split(separator: ",").map { text -> UInt64 in
                guard let seed = UInt64(text.trimmingCharacters(in: .whitespaces)) else { throw ValidationError("--seeds: '\(text)' is not a seed") }
                return seed
            }
        }
    }

    func validate() throws {
        guard (seeds == nil) != (partitions == nil) else { throw ValidationError("give --seeds or --partitions (one of them)") }
        if seeds != nil && training.modelOptions.seed != nil {
            throw ValidationError("--seed and --seeds together: the runs take their seeds from --seeds")
        }
        if partitions != nil && training.partition != nil {
            throw ValidationError("--partition and --partitions together: the runs take their partitions from --partitions")
        }
        _ = try seedList
        try rejectAblationSwitches(training)
    }

    func run() throws {
        let world = Communicator.world
        let say = rankZeroPrinter(world)
        let (seedList, (configuration, options)) = world.agreeOnSetUp { (try self.seedList, try training.resolve(world)) }
        world.abortOnError {
            let partitionList = (partitions ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            if seedList.count + partitionList.count < 2 {
                say("note: with one run there is no standard deviation and no t-test")
            }
            let runs = try RepeatedRuns.run(system: system, configuration: configuration, options: options, seeds: seedList,
                                            partitions: partitionList, directory: training.out, communicator: world, log: say)
            guard world.rank == 0 else { return }
            let json = try runs.write(to: training.out)
            print(runs.table)
            print("wrote \(json)")
        }
    }
}

// MARK: - partitions

struct PartitionsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "partitions",
        abstract: "Write speaker-independent partition files (authors' CSV layout) for a corpus.",
        discussion: """
        Speakers are shuffled with --seed and laid out on a circle; partition i takes its test \
        speakers from i/count of the way round, then its development speakers, the rest train. \
        No speaker is in two splits of a partition; with --test-fraction 1/count the test sets \
        are disjoint. Shares default to the corpus's own. Writes OUT/partition<i>.csv.
        """)

    @Option(help: "The corpus.") var corpus: String
    @Option(help: "Number of partitions.") var count = 5
    @Option(help: "Output folder.") var out: String
    @Option(help: "Seed of the speaker order.") var seed: UInt64 = 0
    @Option(help: "Share of utterances in each test split (default: the corpus's).") var testFraction: Double?
    @Option(help: "Share of utterances in each development split (default: the corpus's).") var devFraction: Double?

    func run() throws {
        try endingWithOneLine {
            let corpusFile = try Corpus.open(corpus)
            let shares = PartitionGenerator.corpusShares(corpusFile)
            let generator = PartitionGenerator(count: count, seed: seed,
                                               testFraction: testFraction ?? (shares.test > 0 ? shares.test : 0.2),
                                               developmentFraction: devFraction ?? (shares.development > 0 ? shares.development : 0.1))
            let partitions = try generator.partitions(speakers: corpusFile.speakers)
            try ExperimentFile.makeDirectory(out)
            var paths: [String] = []
            for (index, splits) in partitions.enumerated() {
                let path = (out as NSString).appendingPathComponent("partition\(index + 1).csv")
                try ExperimentFile.write(text: PartitionGenerator.csv(corpus: corpusFile, splits: splits), to: path)
                paths.append(path)
                print("\(path): " + PartitionGenerator.describe(splits, speakers: corpusFile.speakers))
            }
            print("use: vavl experiment repeat --corpus \(corpus) --partitions \(paths.joined(separator: ",")) --out DIR …")
        }
    }
}

// MARK: - compare

struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Two-tailed t-test (p < 0.05) between two `experiment repeat` results, per metric and head.",
        discussion: """
        Paired when both ran on the same seeds or the same partitions (matched by content) of \
        the same corpus; Welch's unequal-variance test otherwise. The last columns compare the \
        spread across runs: the ratio of standard deviations and the Brown–Forsythe test's p.
        """)

    @Argument(help: "repeat.json of system A.") var resultsA: String
    @Argument(help: "repeat.json of system B.") var resultsB: String
    @Option(help: "Significance level.") var alpha = 0.05
    @Option(help: "Also write the comparison as JSON here (for `vavl report`).") var json: String?

    func run() throws {
        try endingWithOneLine {
            let a = try ExperimentFile.read(RepeatedRuns.self, from: resultsA)
            let b = try ExperimentFile.read(RepeatedRuns.self, from: resultsB)
            let comparison = try Comparison.compare(a, file: resultsA, b, file: resultsB, alpha: alpha)
            print(comparison.table)
            if let json {
                try ExperimentFile.write(comparison, to: json)
                print("wrote \(json)")
            }
        }
    }
}
