import Foundation
import VAVLData
@testable import VAVLExperiments
import VAVLTraining
import XCTest

/// The robustness sweep reproduces the shape of the paper's Figs. 2–3 on a corpus whose
/// structure is known: audio carries a stronger signal than video, and the information is
/// spread over many noisy frames (frame noise 4, small speaker and utterance offsets), so
/// losing frames loses information. Masking audio then drags the audio-visual head down,
/// monotonically within noise, until the (unmasked) video-only head is better.
///
/// Training long enough for that takes minutes in a debug build, so this test runs only
/// with `VAVL_EXPERIMENTS_CHECK=1`, from `Scripts/experiments-check.sh`, which points
/// `VAVL_BIN` at a release binary and `VAVL_MPIRUN` at the launcher to also check that the
/// sweep and the baseline trainer give the same results on two ranks as on one.
final class RobustnessTrendTests: XCTestCase {
    let environment = ProcessInfo.processInfo.environment

    func launch(_ command: [String], file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = command
        let output = Pipe(), error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        let out = output.fileHandleForReading.readDataToEndOfFile(), err = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: out, as: UTF8.self)
        XCTAssertEqual(process.terminationStatus, 0, "\(command.joined(separator: " ")):\n\(String(decoding: err, as: UTF8.self))\n\(text)",
                       file: file, line: line)
        return text
    }

    func testMaskingTheStrongerModalityDragsTheAudioVisualHeadBelowTheOtherModality() throws {
        guard environment["VAVL_EXPERIMENTS_CHECK"] == "1" else {
            throw XCTSkip("minutes of training: run Scripts/experiments-check.sh (VAVL_EXPERIMENTS_CHECK=1)")
        }
        let binary = environment["VAVL_BIN"] ?? VAVLBinary.url.path
        let folder = NSTemporaryDirectory() + "vavl-trend-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { if environment["VAVL_KEEP"] == nil { try? FileManager.default.removeItem(atPath: folder) } }

        var options = SyntheticOptions(preset: .cremaD, output: folder + "/corpus.h5")
        options.audioDimension = 12
        options.videoDimension = 10
        options.utterances = 400
        options.seed = 4
        var signal = SyntheticSignal(audioStrength: 5, videoStrength: 3)
        signal.frameNoise = 4
        signal.utteranceNuisance = 0.1
        signal.speakerNuisance = 0.1
        options.signal = signal
        try synthesizeCorpus(options)

        _ = try launch([binary, "train", "--corpus", options.output, "--out", folder + "/run", "--model", "tiny", "--epochs", "10",
                        "--batch-size", "16", "--lr", "3e-3", "--threads", "1", "--quiet"])
        let sweepArguments = ["experiment", "robustness", "--checkpoint", folder + "/run/checkpoint-best.h5", "--corpus", options.output,
                              "--modality", "audio"]
        let printed = try launch([binary] + sweepArguments + ["--out", folder + "/robustness"])
        let sweep = try ExperimentFile.read(RobustnessSweep.self, from: folder + "/robustness/robustness-audio.json")
        let av = sweep.audioVisualCurve, video = sweep.referenceValue
        let context = "\(printed)\n(corpus and runs in \(folder) with VAVL_KEEP=1)"
        // Uniform guessing scores F1-macro ≈ 0.16 on six classes: both lines are clearly above it.
        XCTAssertGreaterThan(av[0], 0.5, context)
        XCTAssertGreaterThan(video, 0.25, context)
        XCTAssertGreaterThan(av[0], video + 0.1, "with all frames, audio-visual beats video-only\n" + context)
        // Falling as frames go: by a wide margin overall, and never rising above an earlier level by more than noise.
        XCTAssertLessThan(av[9], av[0] - 0.25, context)
        XCTAssertLessThan(av[7...].reduce(0, +) / 3, av[..<3].reduce(0, +) / 3 - 0.25, context)
        for index in 1..<av.count {
            XCTAssertLessThanOrEqual(av[index], av[..<index].max()! + 0.05, "rise at \(index * 10) %\n" + context)
        }
        // The video-only line crosses it.
        XCTAssertGreaterThan(video, av[9] + 0.1, context)
        let crossover = try XCTUnwrap(sweep.crossoverPercent, context)
        XCTAssertTrue((20...90).contains(crossover), context)
        // The masked modality's own head falls too (the information is gone, not just the fusion confused).
        XCTAssertLessThan(sweep.points[9].maskedUnimodal!.metrics["f1_macro"]!, sweep.points[0].maskedUnimodal!.metrics["f1_macro"]! - 0.25, context)

        guard let launcher = environment["VAVL_MPIRUN"]?.split(separator: " ").map(String.init), !launcher.isEmpty else { return }
        // Two ranks share the sweep's utterances: the same scores.
        _ = try launch(launcher + ["-np", "2", binary] + sweepArguments + ["--out", folder + "/robustness-2"])
        let twoRanks = try ExperimentFile.read(RobustnessSweep.self, from: folder + "/robustness-2/robustness-audio.json")
        for (one, two) in zip(sweep.points, twoRanks.points) {
            for (name, value) in one.audioVisual.metrics {
                XCTAssertEqual(value, two.audioVisual.metrics[name]!, accuracy: 1e-4, "\(name) at \(one.percent) %")
            }
        }
        // The unimodal baselines train data-parallel with one process's global-batch semantics.
        let ablation = ["experiment", "ablations", "--corpus", options.output, "--model", "tiny", "--epochs", "1", "--batch-size", "16",
                        "--lr", "3e-3", "--max-iterations", "6", "--systems", "unimodal-audio,unimodal-video", "--quiet", "--threads", "1"]
        _ = try launch([binary] + ablation + ["--out", folder + "/ablations-1"])
        _ = try launch(launcher + ["-np", "2", binary] + ablation + ["--out", folder + "/ablations-2"])
        let one = try ExperimentFile.read(AblationStudy.self, from: folder + "/ablations-1/ablations.json")
        let two = try ExperimentFile.read(AblationStudy.self, from: folder + "/ablations-2/ablations.json")
        for (a, b) in zip(one.systems, two.systems) {
            for (head, scores) in a.heads {
                XCTAssertEqual(scores.metrics["loss"]!, b.heads[head]!.metrics["loss"]!, accuracy: 2e-4, "\(a.system.rawValue) \(head) test loss, 1 vs 2 ranks")
                XCTAssertEqual(scores.count, b.heads[head]!.count)
            }
        }
    }
}
