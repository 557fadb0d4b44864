import ArgumentParser
import VAVLData

/// `--max-frames` for every command that reads features: the longest utterance accepted
/// (`FrameLimit`, DESIGN §5). Applied before any input is read.
struct FrameLimitOption: ParsableArguments {
    @Option(name: .customLong("max-frames"),
            help: "Longest utterance accepted, in frames of either modality (default \(FrameLimit.standard): ten minutes of audio at 50 frames/s). Longer ones are errors naming them.")
    var maximum: Int?

    func apply() throws {
        guard let maximum else { return }
        guard maximum >= 1, maximum <= 1 << 31 else { throw ValidationError("--max-frames must be 1…2³¹, got \(maximum)") }
        FrameLimit.maximum = maximum
    }
}
