import Foundation
import MPI
@testable import VAVLCore
import VAVLData
@testable import VAVLTraining
import XCTest

/// A temporary folder with a tiny synthetic corpus, shared by the tests of one class.
final class TinyCorpus {
    let folder: String
    let path: String

    init(preset: SyntheticPreset = .cremaD, utterances: Int = 90, audioOnly: Double = 0.2, videoOnly: Double = 0.2) throws {
        folder = NSTemporaryDirectory() + "vavl-training-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        path = folder + "/\(preset.rawValue).h5"
        var options = SyntheticOptions(preset: preset, output: path)
        options.audioDimension = 12
        options.videoDimension = 10
        options.utterances = utterances
        options.audioOnlyFraction = audioOnly
        options.videoOnlyFraction = videoOnly
        options.seed = 3
        try synthesizeCorpus(options)
    }

    deinit { try? FileManager.default.removeItem(atPath: folder) }

    func subfolder(_ name: String) -> String {
        let path = folder + "/" + name
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// A tiny model configured for this corpus.
    func configuration(epochs: Int = 2) throws -> VAVLConfiguration {
        let corpus = try Corpus.open(path)
        var configuration = VAVLConfiguration.tiny(audio: corpus.dimension(.audio), video: corpus.dimension(.video),
                                                   outputs: corpus.labelCount)
        try configuration.adopt(corpus)
        configuration.learningRate = 1e-3
        configuration.batchSize = 16
        configuration.epochs = epochs
        configuration.seed = 5
        return configuration
    }

    func options(_ run: String) -> TrainingOptions {
        var options = TrainingOptions(corpusPath: path, outputDirectory: subfolder(run))
        options.quiet = true
        return options
    }
}

/// The `vavl` binary next to the test bundle, run as a subprocess.
enum VAVLBinary {
    static var url: URL {
        // VAVL_TEST_BINARY: the binary under test (Scripts/test.sh runs the command-line tests
        // again against the release build, where the numeric core is unchecked).
        if let binary = ProcessInfo.processInfo.environment["VAVL_TEST_BINARY"] { return URL(fileURLWithPath: binary) }
        // The test bundle (an executable on Linux) sits next to the package's products.
        return URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("vavl")
    }

    /// Runs `vavl arguments…`; returns (exit status, standard output, standard error).
    @discardableResult
    static func run(_ arguments: [String]) throws -> (status: Int32, output: String, error: String) {
        let process = Process()
        process.executableURL = url
        process.arguments = arguments
        let output = Pipe(), error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: outputData, as: UTF8.self), String(decoding: errorData, as: UTF8.self))
    }
}


func allValues(_ store: ParameterStore) -> [Float] {
    Array(UnsafeBufferPointer(start: store.values, count: store.parameterCount))
}
