import ArgumentParser
import BLAS
import MPI
import VAVLCore
import VAVLExperiments
import VAVLTraining

/// What the training experiments (`ablations`, `repeat`) take: the corpus, an output folder
/// and every flag of `vavl train` (``TrainingFlags``, shared). `--resume` and `--task` are
/// not offered: an interrupted experiment continues by running it again, and the task is
/// the corpus's.
struct ExperimentTrainingOptions: ParsableArguments {
    @Option(help: "The corpus (HDF5, DESIGN §5).") var corpus: String
    @Option(help: "Output folder of the experiment (one subfolder per run).") var out: String
    @OptionGroup var flags: TrainingFlags

    var modelOptions: ModelOptions { flags.modelOptions }
    var partition: String? { flags.partition }

    /// The base configuration and options, resolved as `vavl train` resolves them (task,
    /// dimensions and labels from the corpus; the output folder prepared), with plain
    /// progress lines: several runs share the terminal.
    func resolve(_ world: Communicator) throws -> (VAVLConfiguration, TrainingOptions) {
        try flags.resolve(corpus: corpus, out: out, task: nil, resume: nil, progress: .plain, world)
    }
}
