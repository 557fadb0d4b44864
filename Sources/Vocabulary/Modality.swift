/// One of the two input streams of an utterance: speech features or face features
/// (docs/DESIGN.md §1). The corpus, the model and the loader all speak of modalities with
/// this one type.
public enum Modality: String, Codable, CaseIterable, Sendable {
    case audio
    case video
}
