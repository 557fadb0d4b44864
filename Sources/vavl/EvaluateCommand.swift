import ArgumentParser
import Foundation
import HDF5
import MPI
import VAVLData
import VAVLTraining

extension Split: ExpressibleByArgument {}

struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Score a checkpoint on a split with every head (AV, audio-only, video-only); also under mpirun.",
        discussion: "Categorical: F1-macro, unweighted average recall, F1-micro, accuracy, per-class recall/precision/F1 and the confusion matrix; dimensional: CCC, Pearson and MAE per attribute and the mean CCC; sentiment: MAE, Pearson, binary accuracy and weighted F1 (negative vs positive) and 7-class accuracy. The table and --json hold the same scores (DESIGN §1, §7).")

    @OptionGroup var checkpoint: CheckpointOption
    @OptionGroup var precision: PrecisionOption
    @OptionGroup var frameLimit: FrameLimitOption
    @Option(help: "The corpus to score.") var corpus: String
    @Option(help: "train, dev or test.") var split: Split = .test
    @Option(help: "Also write the scores as JSON here.") var json: String?
    @Option(help: "Zero this percentage of each utterance's audio frames (robustness, DESIGN §7).") var maskAudio: Double = 0
    @Option(help: "Zero this percentage of each utterance's video frames.") var maskVideo: Double = 0
    @Option(help: "Seed of the masked-frame choice.") var maskSeed: UInt64 = 0
    @Option(help: "A partition file (authors' CSV layout) reassigning the corpus's splits.") var partition: String?

    func run() throws {
        let world = Communicator.world
        world.abortOnError {
            try frameLimit.apply()
            guard (0...100).contains(maskAudio), (0...100).contains(maskVideo) else {
                throw ValidationError("--mask-audio and --mask-video are percentages in 0…100")
            }
            let trained = try TrainedModel(checkpoint: checkpoint.resolved(announce: Communicator.world.rank == 0), precision: precision.value)
            let corpusFile = try Corpus.open(corpus)
            let report = try EvaluationReport.evaluate(trained, corpus: corpusFile, split: split,
                                                       masking: FrameMasking(audioPercent: maskAudio, videoPercent: maskVideo, seed: maskSeed),
                                                       communicator: world,
                                                       splits: try partition.map { try SplitAssignment(partitionFile: $0, corpus: corpusFile) })
            guard world.rank == 0 else { return }
            print(report.table)
            if let json { try SafeFiles.replace(json, with: report.json()) }
        }
    }
}
