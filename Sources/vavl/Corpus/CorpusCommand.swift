import ArgumentParser
import Foundation
import VAVLData

/// `vavl corpus synth|import|inspect|validate`: make, import and check corpus files (DESIGN §5).
struct CorpusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "corpus",
        abstract: "Make, import, inspect and validate HDF5 corpus files.",
        subcommands: [SynthCorpusCommand.self, ImportCorpusCommand.self, InspectCorpusCommand.self, ValidateCorpusCommand.self]
    )
}


/// Runs `body`, printing any error (which names the file and utterance) and exiting 1.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as CorpusError {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        throw ExitCode(1)
    }
}

/// Prints `done / total` to stderr at most every two seconds (and at the end).
final class ProgressPrinter {
    private let label: String
    private var last = Date()

    init(_ label: String) { self.label = label }

    func callAsFunction(_ done: Int, _ total: Int) {
        let now = Date()
        guard done == total || now.timeIntervalSince(last) >= 2 else { return }
        last = now
        FileHandle.standardError.write(Data("\(label): \(done) / \(total) utterances\n".utf8))
    }
}

/// Parses `A,V` into two integers.
func parsePair<T: LosslessStringConvertible>(_ text: String, _ what: String) throws -> (T, T) {
    let parts = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    guard parts.count == 2, let first = T(parts[0]), let second = T(parts[1]) else {
        throw ValidationError("\(what) takes two comma-separated numbers, got '\(text)'")
    }
    return (first, second)
}

extension PredictionTask: ExpressibleByArgument {}
extension SyntheticPreset: ExpressibleByArgument {}

// MARK: - synth

struct SynthCorpusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "synth",
        abstract: "Write a synthetic corpus with learnable, label-dependent audio and video features.",
        discussion: """
        Presets: crema-d (6 classes, the CREMA-D label file), msp-improv (arousal/valence/dominance \
        on 1-5, the MSP-IMPROV label file), mosei (sentiment -3..3, generated metadata with the \
        paper's split sizes; 74-d audio, 35-d video by default). Audio at 50, video at 30 frames/s.
        """)

    @Option(help: "crema-d, msp-improv or mosei.") var preset: SyntheticPreset
    @Option(help: "The corpus file to write (atomically).") var output: String
    @Option(help: "Feature dimensions A,V (default 1024,1408; mosei 74,35).") var dims: String?
    @Option(help: "A seeded subset of N utterances keeping every split represented.") var utterances: Int?
    @Option(help: "Share of utterances whose video is dropped.") var audioOnlyFraction: Double = 0
    @Option(help: "Share of utterances whose audio is dropped.") var videoOnlyFraction: Double = 0
    @Option(help: "Random seed (features, subset, dropped modalities).") var seed: UInt64 = 0
    @Option(help: "Norm of the audio label signal (default: the preset's).") var audioStrength: Double?
    @Option(help: "Norm of the video label signal (default: the preset's).") var videoStrength: Double?
    @Flag(help: "Print the report as JSON.") var json = false

    func run() throws {
        var options = SyntheticOptions(preset: preset, output: output)
        if let dims {
            let (audio, video): (Int, Int) = try parsePair(dims, "--dims")
            options.audioDimension = audio
            options.videoDimension = video
        }
        options.utterances = utterances
        options.audioOnlyFraction = audioOnlyFraction
        options.videoOnlyFraction = videoOnlyFraction
        options.seed = seed
        if let audioStrength { options.signal.audioStrength = audioStrength }
        if let videoStrength { options.signal.videoStrength = videoStrength }
        try reportingErrors {
            let progress = ProgressPrinter("synth")
            let report = try synthesizeCorpus(options) { progress($0, $1) }
            if json {
                print(try encodeJSON(report))
            } else {
                print(String(format: "wrote %@: %d utterances (%d audio+video, %d audio-only, %d video-only), %.1f MB in %.2f s (%.1f MB/s)",
                             output, report.utterances, report.audioAndVideo, report.audioOnly, report.videoOnly,
                             Double(report.bytes) / 1e6, report.seconds, report.megabytesPerSecond))
            }
        }
    }
}

// MARK: - import

struct ImportCorpusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import a label CSV and per-utterance .npy (or one-array .npz) features into a corpus file.",
        discussion: """
        The CSV has the authors' layout: FileName, label columns, SpkrID, Gender, Split_Set \
        (Train/Development/Test). Features are <FileName without .wav>.npy in --audio and --video \
        (frames x dims, float32 or float64, C order), or .npz archives of one such array \
        (numpy.savez or savez_compressed); a missing file means that modality is missing. \
        Any bad input is an error naming the file and utterance, and no output is written.
        """)

    @Option(help: "The label CSV.") var labels: String
    @Option(help: "Folder of audio .npy/.npz files.") var audio: String
    @Option(help: "Folder of video .npy/.npz files.") var video: String
    @OptionGroup var frameLimit: FrameLimitOption
    @Option(help: "categorical, dimensional or sentiment.") var task: PredictionTask
    @Option(help: "The corpus file to write (atomically).") var output: String
    @Option(help: "Label columns a,b,c in order (default: all but FileName, SpkrID, Gender, Split_Set).") var labelColumns: String?
    @Option(help: "The rating scale LO,HI (required for dimensional; sentiment defaults to -3,3).") var labelRange: String?
    @Option(help: "Expected audio dimension (default: that of the first file).") var audioDim: Int?
    @Option(help: "Expected video dimension (default: that of the first file).") var videoDim: Int?
    @Option(help: "Audio frames per second.") var audioFps: Double = 50
    @Option(help: "Video frames per second.") var videoFps: Double = 30
    @Flag(help: "Print the report as JSON.") var json = false

    func run() throws {
        try frameLimit.apply()
        var options = ImportOptions(labelFile: labels, audioDirectory: audio, videoDirectory: video, task: task, output: output)
        options.labelColumns = labelColumns.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        if let labelRange {
            let (low, high): (Double, Double) = try parsePair(labelRange, "--label-range")
            guard low < high else { throw ValidationError("--label-range needs LO < HI, got \(labelRange)") }
            options.labelRange = low...high
        }
        options.audioDimension = audioDim
        options.videoDimension = videoDim
        options.audioFramesPerSecond = audioFps
        options.videoFramesPerSecond = videoFps
        try reportingErrors {
            let progress = ProgressPrinter("import")
            let report = try importCorpus(options) { progress($0, $1) }
            if json {
                print(try encodeJSON(report))
            } else {
                print("wrote \(output): \(report.utterances) utterances (\(report.audioAndVideo) audio+video, \(report.audioOnly) audio-only, \(report.videoOnly) video-only), dims \(report.audioDimension)/\(report.videoDimension)")
                if report.unusedFiles > 0 {
                    print("note: \(report.unusedFiles) feature files name no utterance of the label file and were ignored")
                }
            }
        }
    }
}

// MARK: - inspect

struct InspectCorpusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Counts per split and modality pattern, frames, dims, label statistics, size on disk.")

    @Argument(help: "The corpus file.") var file: String
    @Flag(help: "Print JSON instead of tables.") var json = false
    @OptionGroup var frameLimit: FrameLimitOption

    func run() throws {
        try frameLimit.apply()
        try reportingErrors {
            let summary = CorpusSummary(try Corpus.open(file))
            print(json ? try encodeJSON(summary) : summary.text)
        }
    }
}

// MARK: - validate

struct ValidateCorpusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check a corpus in full (structure, every feature value, stored statistics); exit 1 on any problem.")

    @Argument(help: "The corpus file.") var file: String

    @OptionGroup var frameLimit: FrameLimitOption

    func run() throws {
        try frameLimit.apply()
        let progress = ProgressPrinter("validate")
        let report = validateCorpus(file) { progress($0, $1) }
        if report.isValid {
            print("\(file): valid (\(report.utterancesChecked) utterances, \(report.valuesChecked) feature values checked)")
        } else {
            for problem in report.problems { FileHandle.standardError.write(Data("error: \(problem)\n".utf8)) }
            throw ExitCode(1)
        }
    }
}

/// The corpus commands' JSON reports, with snake_case keys like every JSON vavl writes.
func encodeJSON<T: Encodable>(_ value: T) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    encoder.keyEncodingStrategy = .convertToSnakeCase
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}
