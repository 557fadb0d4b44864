/// The prediction task (docs/DESIGN.md §1). It is a property of the labels a corpus carries
/// and of the model trained on them, and it fixes the output layer, the training loss and
/// the metrics; corpus, model and evaluation share this one type.
public enum PredictionTask: String, Codable, CaseIterable, Sendable {
    /// K class scores per utterance (a distribution over the classes, e.g. CREMA-D's six);
    /// the model emits K logits and trains with cross-entropy.
    case categorical
    /// K attribute values on a rating scale (e.g. MSP-IMPROV arousal, valence, dominance on
    /// 1–5); trained with Σ_k (1 − CCC_k).
    case dimensional
    /// One sentiment value (e.g. CMU-MOSEI, −3…3); trained with L1.
    case sentiment
}
