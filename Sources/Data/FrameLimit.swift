/// The most frames one utterance may have, in any modality (DESIGN §5). Every reader of
/// features — corpus files, `.npy`/`.npz` import, `predict` — refuses a longer utterance with
/// an error naming it, before allocating for it. The default, 30,000 frames, is ten minutes
/// of audio at 50 frames/s (and over sixteen of video at 30); `--max-frames` raises it. Up to
/// the limit, evaluation and prediction run in memory linear in the length (attention in
/// blocks of queries); training keeps T² attention weights per head for its backward.
public enum FrameLimit {
    public static let standard = 30_000

    /// The limit of this process, set once from `--max-frames` before any input is read
    /// (every rank of a job is given the same flags).
    nonisolated(unsafe) public static var maximum = standard

    /// The error text for an utterance of `frames` frames.
    static func problem(frames: Int, modality: String) -> String {
        "\(frames) \(modality) frames, above the limit of \(maximum) per utterance (--max-frames raises it)"
    }

    /// Refuses `frames` above the limit, naming the file and utterance.
    public static func check(_ frames: Int, modality: String, file: String, utterance: String?) throws {
        if frames > maximum { throw CorpusError(file: file, utterance: utterance, problem(frames: frames, modality: modality)) }
    }
}
