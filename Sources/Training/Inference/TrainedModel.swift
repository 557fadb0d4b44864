import Foundation
import VAVLCore
import VAVLData

/// A model loaded from a checkpoint for evaluation, prediction or export: the config, the
/// weights and the normalisation statistics it was trained with.
public final class TrainedModel {
    public let path: String
    public let model: VAVLModel
    public let normalization: Normalization
    public let state: TrainingState
    public var configuration: VAVLConfiguration { model.configuration }

    /// Loads `path`. Products run in the precision the model was trained in, or in
    /// `precision` when given (evaluating a bf16-trained model in fp32, say).
    public init(checkpoint path: String, precision: Precision? = nil) throws {
        self.path = path
        let configuration = try Checkpoint.configuration(path)
        try MemoryCheck.ensureFits(configuration, training: false, source: path)
        model = VAVLModel(configuration)
        (normalization, state) = try Checkpoint.load(path, into: model)
        if let precision { model.store.precision = precision }
    }

    /// The precision the products run in.
    public var precision: Precision { model.store.precision }

    /// Checks that `corpus` can be scored by this model: same task, label count and
    /// feature dimensions.
    public func ensureCompatible(with corpus: Corpus) throws {
        let config = configuration
        guard corpus.task == config.task else {
            throw CorpusError(file: corpus.path, "the corpus is \(corpus.task.rawValue) but the checkpoint \(path) was trained for \(config.task.rawValue)")
        }
        guard corpus.labelCount == config.outputDimension else {
            throw CorpusError(file: corpus.path, "the corpus has \(corpus.labelCount) label columns, the checkpoint \(path) predicts \(config.outputDimension)")
        }
        for (modality, expected) in [(VAVLData.Modality.audio, config.audioDimension), (.video, config.videoDimension)]
        where corpus.totalFrames(modality) > 0 && corpus.dimension(modality) != expected {
            throw CorpusError(file: corpus.path, "\(modality.rawValue) features have \(corpus.dimension(modality)) dimensions, the checkpoint \(path) expects \(expected)")
        }
    }

    /// A loader for `corpus` with this model's normalisation and label mapping.
    public func loader(for corpus: Corpus) -> BatchLoader {
        BatchLoader(corpus: corpus, normalization: normalization,
                    labels: LabelMapping(task: configuration.task, transforms: configuration.labelTransform,
                                         outputCount: configuration.outputDimension))
    }
}
