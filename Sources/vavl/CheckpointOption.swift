import ArgumentParser
import Foundation
import VAVLTraining

extension Trainer.CheckpointChoice: ExpressibleByArgument {}

/// `--checkpoint` for the commands that read a trained model: a file, or a run folder whose
/// selected model (`checkpoint-best.h5`) it means unless `--which last` says otherwise.
/// The file used is named on standard error.
struct CheckpointOption: ParsableArguments {
    @Option(help: "A checkpoint written by `vavl train`, or its run folder: then checkpoint-best.h5 (the epoch selected on the development split; checkpoint-last.h5 if the run had none).")
    var checkpoint: String

    @Option(help: "In a run folder: best (the selected epoch) or last.")
    var which: Trainer.CheckpointChoice = .best

    /// The checkpoint file, said on standard error (standard output may be the result).
    func resolved(announce: Bool = true) -> String {
        let path = Trainer.checkpointPath(checkpoint, which: which)
        // A run folder without a selected model (no development split) falls back to the last.
        let fellBack = which == .best && path.hasSuffix("/checkpoint-last.h5") && !checkpoint.hasSuffix(".h5")
        let why = fellBack ? " (the run has no checkpoint-best.h5: it had no development split to select on)" : ""
        if announce { FileHandle.standardError.write(Data("checkpoint: \(path)\(why)\n".utf8)) }
        return path
    }
}
