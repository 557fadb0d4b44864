import Foundation
import HDF5
@testable import VAVLCore
import VAVLData
@testable import VAVLTraining
import XCTest

/// The `vavl train / evaluate / predict / export` commands as a user runs them.
final class CommandLineTests: XCTestCase {
    static var corpus: TinyCorpus!
    static var checkpoint: String!

    override class func setUp() {
        corpus = try! TinyCorpus()
        let out = corpus.subfolder("cli-run")
        let result = try! VAVLBinary.run(["train", "--corpus", corpus.path, "--out", out, "--model", "tiny", "--epochs", "1",
                                          "--batch-size", "16", "--lr", "1e-3", "--quiet"])
        precondition(result.status == 0, "training failed: \(result.error)")
        checkpoint = out + "/checkpoint-last.h5"
    }

    override class func tearDown() { corpus = nil }

    func testConfigFileThenFlagsOverrideThePreset() throws {
        let folder = Self.corpus.subfolder("config")
        let config = folder + "/config.json"
        try Data(#"{"dim": 24, "heads": 4, "lr": 0.01, "ff_expansion": 3, "sampler": "balanced", "batchnorm": "local", "precision": "bf16"}"#.utf8)
            .write(to: URL(fileURLWithPath: config))
        let result = try VAVLBinary.run(["train", "--corpus", Self.corpus.path, "--out", folder + "/run", "--model", "tiny",
                                         "--config", config, "--lr", "0.02", "--max-iterations", "0", "--quiet"])
        XCTAssertEqual(result.status, 0, result.error)
        let resolved = try Checkpoint.configuration(folder + "/run/checkpoint-last.h5")
        XCTAssertEqual(resolved.dim, 24)              // from the file
        XCTAssertEqual(resolved.heads, 4)             // from the file
        XCTAssertEqual(resolved.feedForwardExpansion, 3)
        XCTAssertEqual(resolved.learningRate, 0.02)   // the flag beats the file
        XCTAssertEqual(resolved.acousticBlocks, 1)    // the preset where neither says
        XCTAssertEqual(resolved.audioDimension, 12)   // from the corpus
        XCTAssertEqual(resolved.sampler, "balanced")  // from the file: flags the user did not type do not override it
        XCTAssertEqual(resolved.batchnorm, "local")
        XCTAssertEqual(resolved.precision, .bf16)
        // The run's resolved configuration, as a config file that reads back to the same.
        let written = try JSONDecoder().decode(VAVLConfiguration.self, from: Data(contentsOf: URL(fileURLWithPath: folder + "/run/config.json")))
        XCTAssertEqual(written, resolved)
    }

    /// A run folder belongs to one training at a time, and a folder that holds a run is
    /// continued (--resume) or replaced (--overwrite), never silently overwritten; a planted
    /// link in place of metrics.jsonl is refused, not written through.
    func testRunFolderIsLockedAndNeverSilentlyOverwritten() throws {
        let run = Self.corpus.subfolder("folder-rules")
        let train = ["train", "--corpus", Self.corpus.path, "--out", run, "--model", "tiny", "--max-iterations", "1", "--quiet"]
        XCTAssertEqual(try VAVLBinary.run(train).status, 0)
        let again = try VAVLBinary.run(train)
        XCTAssertNotEqual(again.status, 0)
        XCTAssertTrue(again.error.contains("already holds a run") && again.error.contains("--overwrite"), again.error)
        let replaced = try VAVLBinary.run(train + ["--overwrite"])
        XCTAssertEqual(replaced.status, 0, replaced.error)
        // Another process holds the folder's lock: a second training stops at once, naming it.
        let descriptor = open(run + "/.vavl-lock", O_RDWR)
        XCTAssertGreaterThanOrEqual(descriptor, 0)
        XCTAssertEqual(flock(descriptor, LOCK_EX | LOCK_NB), 0)
        let locked = try VAVLBinary.run(train + ["--overwrite"])
        close(descriptor)
        XCTAssertNotEqual(locked.status, 0)
        XCTAssertTrue(locked.error.contains("in use by another training run"), locked.error)
        // metrics.jsonl planted as a link to a file outside the run: refused, the file untouched.
        let linked = Self.corpus.subfolder("planted")
        let outside = Self.corpus.folder + "/outside.txt"
        try Data("untouched".utf8).write(to: URL(fileURLWithPath: outside))
        try FileManager.default.createSymbolicLink(atPath: linked + "/metrics.jsonl", withDestinationPath: outside)
        let planted = try VAVLBinary.run(["train", "--corpus", Self.corpus.path, "--out", linked, "--model", "tiny",
                                          "--max-iterations", "1", "--quiet"])
        XCTAssertNotEqual(planted.status, 0)
        XCTAssertTrue(planted.error.contains("symbolic link"), planted.error)
        XCTAssertEqual(try String(contentsOfFile: outside, encoding: .utf8), "untouched")
    }

    /// Every whole-file output (predictions, evaluation JSON, plots, safetensors) refuses a
    /// path that is a symbolic link, a FIFO or a device, and leaves it as it was: nothing is
    /// written through a planted link, no device is replaced by a regular file.
    func testOutputsThatAreNotRegularFilesAreRefused() throws {
        let folder = Self.corpus.subfolder("special-outputs")
        try FileManager.default.createDirectory(atPath: folder + "/audio", withIntermediateDirectories: true)
        var generator = SplitMix64(seed: 2)
        try NumpyFile.write(folder + "/audio/a.npy", rows: 20, columns: 12, values: (0..<240).map { _ in generator.normal() })
        let outside = folder + "/outside.txt"
        try Data("untouched".utf8).write(to: URL(fileURLWithPath: outside))
        let run = (Self.checkpoint as NSString).deletingLastPathComponent
        let commands: [(String, [String], String)] = [
            ("predict --output", ["predict", "--checkpoint", Self.checkpoint, "--audio", folder + "/audio", "--output"], "out.csv"),
            ("evaluate --json", ["evaluate", "--checkpoint", Self.checkpoint, "--corpus", Self.corpus.path, "--json"], "report.json"),
            ("plot --output", ["plot", run, "--output"], "curves-loss.svg"),
            ("export --safetensors", ["export", "--checkpoint", Self.checkpoint, "--safetensors"], "model.safetensors"),
        ]
        var kinds: [(String, (String) throws -> Void, (String) -> Bool)] = [
            ("a symbolic link", { try FileManager.default.createSymbolicLink(atPath: $0, withDestinationPath: outside) },
             { _ in (try? String(contentsOfFile: outside, encoding: .utf8)) == "untouched" }),
            ("a FIFO", { XCTAssertEqual(mkfifo($0, 0o600), 0) }, { Self.fileType($0) == S_IFIFO }),
        ]
        if getuid() == 0 {  // a character device (the null device's numbers), root only
            kinds.append(("a device", { XCTAssertEqual(mknod($0, S_IFCHR | 0o600, dev_t((1 << 8) | 3)), 0) }, { Self.fileType($0) == S_IFCHR }))
        }
        for (kind, make, unchanged) in kinds {
            for (name, arguments, file) in commands {
                let target = folder + "/" + kind.replacingOccurrences(of: " ", with: "-") + "-" + file
                try make(target)
                // plot names its outputs PREFIX-loss.svg and PREFIX-dev.svg
                let path = name == "plot --output" ? String(target.dropLast("-loss.svg".count)) : target
                let result = try VAVLBinary.run(arguments + [path])
                XCTAssertNotEqual(result.status, 0, "\(name) over \(kind)")
                XCTAssertTrue(result.error.contains("not a regular file"), "\(name) over \(kind): \(result.error)")
                XCTAssertTrue(unchanged(target), "\(name) changed \(kind)")
            }
        }
    }

    private static func fileType(_ path: String) -> mode_t {
        var status = stat()
        return lstat(path, &status) == 0 ? status.st_mode & S_IFMT : 0
    }

    /// An export interrupted by SIGINT leaves neither the output nor its temporary file: the
    /// temporary file is tracked from before it exists and removed by the handler. (Tried
    /// until one run is caught mid-write; every run must leave no partial file.)
    func testInterruptedExportLeavesNothing() throws {
        let folder = Self.corpus.subfolder("interrupted-export")
        // A checkpoint of ~25 M parameters (~100 MB of safetensors), slow enough to write to be interrupted.
        let tiny = try TrainedModel(checkpoint: Self.checkpoint)
        var config = tiny.configuration
        (config.dim, config.heads, config.feedForwardExpansion) = (512, 8, 4)
        (config.acousticBlocks, config.visualBlocks, config.sharedBlocks) = (1, 1, 1)
        let model = VAVLModel(config)
        model.initialize(seed: 2)
        let checkpoint = folder + "/big.h5", output = folder + "/model.safetensors"
        try Checkpoint.write(checkpoint, model: model, optimizer: nil, normalization: tiny.normalization, state: tiny.state)
        func leftovers() -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.contains(".partial-") }
        }
        var interrupted = false
        for _ in 0..<5 where !interrupted {
            unlink(output)
            let process = Process()
            process.executableURL = VAVLBinary.url
            process.arguments = ["export", "--checkpoint", checkpoint, "--safetensors", output]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            while process.isRunning && leftovers().isEmpty { usleep(1000) }
            process.interrupt()
            process.waitUntilExit()
            XCTAssertEqual(leftovers(), [], "a partial file was left behind")
            interrupted = process.terminationReason == .uncaughtSignal
            if interrupted { XCTAssertFalse(FileManager.default.fileExists(atPath: output), "an interrupted export wrote its output") }
        }
        XCTAssertTrue(interrupted, "no export was caught mid-write in five tries")
    }

    /// The safetensors export carries everything a PyTorch user needs to predict: the
    /// canonical weights, the configuration (label transform and names) and the feature
    /// normalisation. (`Scripts/reference/check_export.py` runs it through PyTorch.)
    func testExportCarriesWeightsConfigurationAndNormalisation() throws {
        let path = Self.corpus.folder + "/model.safetensors"
        let result = try VAVLBinary.run(["export", "--checkpoint", Self.checkpoint, "--safetensors", path])
        XCTAssertEqual(result.status, 0, result.error)
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let length = Int(data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }.littleEndian)
        let header = try XCTUnwrap(JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + length))) as? [String: Any])
        let trained = try TrainedModel(checkpoint: Self.checkpoint)
        for name in ["normalization.audio_mean", "normalization.audio_std", "normalization.video_mean", "normalization.video_std"] {
            let entry = try XCTUnwrap(header[name] as? [String: Any], name)
            XCTAssertEqual(entry["dtype"] as? String, "F64")
            let offsets = try XCTUnwrap(entry["data_offsets"] as? [Int])
            let values = data.subdata(in: (8 + length + offsets[0])..<(8 + length + offsets[1])).withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
            let modality: Modality = name.contains("audio") ? .audio : .video
            let statistics = try XCTUnwrap(trained.normalization.statistics(modality))
            XCTAssertEqual(values, name.hasSuffix("mean") ? statistics.mean : statistics.std, name)
        }
        XCTAssertNotNil(header[trained.model.store.parameters[0].name])
        let metadata = try XCTUnwrap(header["__metadata__"] as? [String: String])
        let configuration = try JSONDecoder().decode(VAVLConfiguration.self, from: Data(try XCTUnwrap(metadata["vavl_config"]).utf8))
        XCTAssertEqual(configuration, trained.configuration)
    }

    /// A run folder means its selected model; `--which last` the last epoch's; the file used
    /// is named.
    func testRunFolderMeansTheSelectedModel() throws {
        let folder = (Self.checkpoint as NSString).deletingLastPathComponent
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder + "/checkpoint-best.h5"))
        for (which, expected) in [([String](), "checkpoint-best.h5"), (["--which", "last"], "checkpoint-last.h5")] {
            let result = try VAVLBinary.run(["evaluate", "--checkpoint", folder, "--corpus", Self.corpus.path] + which)
            XCTAssertEqual(result.status, 0, result.error)
            XCTAssertTrue(result.error.contains("checkpoint: \(folder)/\(expected)"), result.error)
        }
        // A run without a selected model: the last, and why.
        let unselected = Self.corpus.subfolder("no-best")
        try? FileManager.default.copyItem(atPath: folder + "/checkpoint-last.h5", toPath: unselected + "/checkpoint-last.h5")
        let fallback = try VAVLBinary.run(["evaluate", "--checkpoint", unselected, "--corpus", Self.corpus.path])
        XCTAssertEqual(fallback.status, 0, fallback.error)
        XCTAssertTrue(fallback.error.contains("checkpoint-last.h5 (the run has no checkpoint-best.h5"), fallback.error)
    }

    /// `--resume RUN` continues the checkpoint's own configuration: no model flags needed;
    /// epochs may change; a training setting changes only through --override; the model never.
    func testResumeTakesTheCheckpointsConfiguration() throws {
        let run = Self.corpus.subfolder("resume-own")
        let first = try VAVLBinary.run(["train", "--corpus", Self.corpus.path, "--out", run, "--model", "tiny", "--epochs", "1",
                                        "--batch-size", "16", "--lr", "1e-3", "--quiet"])
        XCTAssertEqual(first.status, 0, first.error)
        let more = try VAVLBinary.run(["train", "--corpus", Self.corpus.path, "--out", run, "--resume", run, "--epochs", "2",
                                       "--max-iterations", "0"])
        XCTAssertEqual(more.status, 0, more.error)
        XCTAssertTrue(more.output.contains("resume: epochs 1 → 2"), more.output)
        let resolved = try Checkpoint.configuration(run + "/checkpoint-last.h5")
        XCTAssertEqual(resolved.dim, 16, "the tiny model, not the paper preset")
        XCTAssertEqual(resolved.learningRate, 1e-3)
        XCTAssertEqual(resolved.epochs, 2)
        let lr = try VAVLBinary.run(["train", "--corpus", Self.corpus.path, "--out", run, "--resume", run, "--lr", "0.5", "--quiet"])
        XCTAssertNotEqual(lr.status, 0)
        XCTAssertTrue(lr.error.contains("--override") && lr.error.contains("lr 0.001 → 0.5"), lr.error)
        let overridden = try VAVLBinary.run(["train", "--corpus", Self.corpus.path, "--out", run, "--resume", run,
                                             "--override", "lr=0.5", "--max-iterations", "0", "--quiet"])
        XCTAssertEqual(overridden.status, 0, overridden.error)
        XCTAssertEqual(try Checkpoint.configuration(run + "/checkpoint-last.h5").learningRate, 0.5)
        // The metrics say what each resume changed and how.
        let resumes = try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
            .compactMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .filter { $0["type"] as? String == "resume" }
        XCTAssertEqual(resumes.count, 2)
        // The start record names the version, the source commit and every rank's host.
        let start = try XCTUnwrap(try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
            .compactMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }.first)
        XCTAssertEqual(start["type"] as? String, "start")
        XCTAssertEqual(start["hosts"] as? [String], [ProcessInfo.processInfo.hostName])
        let commit = try XCTUnwrap(start["git_commit"] as? String, "the tests run a binary inside the checkout")
        XCTAssertTrue(commit.count == 40 && commit.allSatisfy(\.isHexDigit), commit)
        XCTAssertEqual(resumes.first?["changes"] as? [[String: String]], [["key": "epochs", "from": "1", "to": "2", "by": "flag"]])
        XCTAssertEqual(resumes.last?["changes"] as? [[String: String]], [["key": "lr", "from": "0.001", "to": "0.5", "by": "override"]])
        let typo = try VAVLBinary.run(["train", "--corpus", Self.corpus.path, "--out", run, "--resume", run,
                                       "--override", "learning_rate=0.5", "--quiet"])
        XCTAssertNotEqual(typo.status, 0)
        XCTAssertTrue(typo.error.contains("learning_rate") && typo.error.contains("unknown key"), typo.error)
        // Naming the preset again changes nothing the user did not type: not the preset's
        // epochs, batch size or lr; a config file holding only keys equal to the run's neither.
        let config = run + "-same.json"
        try Data(#"{"sampler": "natural", "batchnorm": "sync", "dim": 16}"#.utf8).write(to: URL(fileURLWithPath: config))
        for named in [["--model", "tiny"], ["--config", config], ["--model", "tiny", "--config", config]] {
            let repeated = try VAVLBinary.run(["train", "--corpus", Self.corpus.path, "--out", run, "--resume", run,
                                               "--max-iterations", "0"] + named)
            XCTAssertEqual(repeated.status, 0, "\(named): \(repeated.error)")
            XCTAssertFalse(repeated.output.contains("resume: "), "\(named) changed: \(repeated.output)")
            let kept = try Checkpoint.configuration(run + "/checkpoint-last.h5")
            XCTAssertEqual([kept.epochs, kept.batchSize], [2, 16], "\(named)")
            XCTAssertEqual(kept.learningRate, 0.5, "\(named)")
        }
        // The corpus may move, but it must hold the same utterances in the same splits.
        let other = try TinyCorpus(utterances: 120)
        let moved = Self.corpus.folder + "/moved.h5"
        try? FileManager.default.removeItem(atPath: moved)
        try FileManager.default.copyItem(atPath: Self.corpus.path, toPath: moved)
        let sameCorpus = try VAVLBinary.run(["train", "--corpus", moved, "--out", run, "--resume", run, "--max-iterations", "0", "--quiet"])
        XCTAssertEqual(sameCorpus.status, 0, sameCorpus.error)
        let otherCorpus = try VAVLBinary.run(["train", "--corpus", other.path, "--out", run, "--resume", run, "--quiet"])
        XCTAssertNotEqual(otherCorpus.status, 0)
        XCTAssertTrue(otherCorpus.error.contains("not the corpus") && otherCorpus.error.contains("train "), otherCorpus.error)
        // ... but a preset or a config key of another model is refused, naming it.
        try Data(#"{"dim": 32}"#.utf8).write(to: URL(fileURLWithPath: config))
        for named in [["--model", "small"], ["--config", config]] {
            let other = try VAVLBinary.run(["train", "--corpus", Self.corpus.path, "--out", run, "--resume", run, "--quiet"] + named)
            XCTAssertNotEqual(other.status, 0, "\(named)")
            XCTAssertTrue(other.error.contains("dim 16 → "), "\(named): \(other.error)")
        }
    }

    /// Values out of range, from flags or a config file, end with one line naming the flag or
    /// key, before anything is built (they crashed the release binary before the table).
    func testOutOfRangeConfigurationValuesAreClearErrors() throws {
        let folder = Self.corpus.subfolder("ranges")
        let config = folder + "/config.json"
        try Data(#"{"learning_rate": 0.1}"#.utf8).write(to: URL(fileURLWithPath: config))
        let cases: [([String], String)] = [
            (["--batch-size=-4"], "batch_size"), (["--batch-size", "0"], "batch_size"), (["--heads", "0"], "heads"),
            (["--dim=-16"], "dim"), (["--dim", "1000000000"], "dim"), (["--dropout", "1.5"], "dropout"),
            (["--lr=-1"], "lr"), (["--epochs=-1"], "epochs"), (["--phase-order", "visual,visual,visual"], "phase_order"),
            (["--config", config], "learning_rate"), (["--sampler", "random"], "sampler"), (["--precision", "fp8"], "fp8"),
            (["--bucket-size", "0"], "--bucket-size"),
            // The error names what the user typed: the flag, or the config file and its key.
            (["--dropout", "1.5"], "--dropout (key 'input_dropout')"), (["--lr", "nan"], "--lr (key 'lr'): nan"),
            (["--config", folder + "/negative.json"], "--config \(folder)/negative.json: 'dim'"),
            // Within every range, but not within this machine's memory: refused before allocating.
            (["--dim", "16384", "--heads", "16"], "GiB, more than this machine's"),
        ]
        try Data(#"{"dim": -16}"#.utf8).write(to: URL(fileURLWithPath: folder + "/negative.json"))
        for (flags, named) in cases {
            let result = try VAVLBinary.run(["train", "--corpus", Self.corpus.path, "--out", folder + "/run", "--model", "tiny",
                                             "--max-iterations", "0", "--quiet"] + flags)
            XCTAssertNotEqual(result.status, 0, "\(flags) was accepted")
            XCTAssertTrue(result.error.contains(named), "\(flags): \(result.error)")
            XCTAssertFalse(result.error.contains("Fatal error") || result.error.contains("Backtrace"), "\(flags) crashed: \(result.error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/run/checkpoint-last.h5"), "a rejected run wrote a checkpoint")
    }

    func testMaxIterationsZeroWritesTheInitialModelReproducibly() throws {
        let folder = Self.corpus.subfolder("initial")
        for run in ["a", "b"] {
            let result = try VAVLBinary.run(["train", "--corpus", Self.corpus.path, "--out", folder + "/" + run, "--model", "tiny",
                                             "--seed", "9", "--max-iterations", "0", "--quiet"])
            XCTAssertEqual(result.status, 0, result.error)
        }
        let a = try HDF5File.open(folder + "/a/checkpoint-last.h5").openDataset("params/shared.encoder.input_projection.weight")
        let b = try HDF5File.open(folder + "/b/checkpoint-last.h5").openDataset("params/shared.encoder.input_projection.weight")
        XCTAssertEqual(try a.read(as: Float.self), try b.read(as: Float.self))
    }

    func testEvaluateWritesTheTableAndJSON() throws {
        let json = Self.corpus.folder + "/scores.json"
        let result = try VAVLBinary.run(["evaluate", "--checkpoint", Self.checkpoint, "--corpus", Self.corpus.path,
                                         "--split", "test", "--json", json])
        XCTAssertEqual(result.status, 0, result.error)
        XCTAssertTrue(result.output.contains("audio_visual"), result.output)
        XCTAssertTrue(result.output.contains("chance (uniform guess)"), result.output)
        let report = try JSONDecoder().decode(EvaluationReport.self, from: Data(contentsOf: URL(fileURLWithPath: json)).keysFromSnakeCase())
        XCTAssertEqual(Set(report.heads.keys), ["audio_visual", "audio", "video"])
        XCTAssertNotNil(report.heads["audio"]?.metrics["f1_macro"])
        // The table shows the confusion matrix too: a row per class, all utterances counted.
        let lines = result.output.components(separatedBy: "\n")
        let start = try XCTUnwrap(lines.firstIndex(of: "confusion matrix (audio_visual)"), result.output)
        let labels = try XCTUnwrap(report.labelNames)
        let rows = lines[(start + 2)..<(start + 2 + labels.count)]
        XCTAssertEqual(rows.map { $0.split(separator: " ").first.map(String.init) }, labels.map { Optional($0) })
        XCTAssertEqual(rows.flatMap { $0.split(separator: " ").dropFirst().compactMap { Int($0) } }.reduce(0, +),
                       report.heads["audio_visual"]?.count)
    }

    /// A dimensional task's table: CCC, Pearson and MAE per attribute, in label order.
    func testDimensionalTableShowsEveryAttributeMetric() {
        let metrics = ["ccc_EmoAct": 0.5, "pearson_EmoAct": 0.6, "mae_EmoAct": 0.7, "ccc_EmoVal": 0.1, "pearson_EmoVal": 0.2,
                       "mae_EmoVal": 0.3, "ccc_mean": 0.3, "loss": 1.4]
        let report = EvaluationReport(checkpoint: "c.h5", corpus: "m.h5", split: "test", task: .dimensional, maskAudioPercent: 0,
                                      maskVideoPercent: 0, heads: ["audio": HeadScores(count: 5, metrics: metrics)], chance: nil,
                                      labelNames: ["EmoAct", "EmoVal"])
        let header = report.table.components(separatedBy: "\n")[1].split(separator: " ").map(String.init)
        XCTAssertEqual(header, ["head", "utterances", "ccc_EmoAct", "pearson_EmoAct", "mae_EmoAct",
                                "ccc_EmoVal", "pearson_EmoVal", "mae_EmoVal", "ccc_mean"])
        XCTAssertTrue(report.table.contains("0.6000") && report.table.contains("0.3000"), report.table)
    }

    func testPredictWithAudioOnlyVideoOnlyAndBoth() throws {
        let folder = Self.corpus.subfolder("predict")
        try FileManager.default.createDirectory(atPath: folder + "/audio", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: folder + "/video", withIntermediateDirectories: true)
        var generator = SplitMix64(seed: 1)
        func write(_ path: String, rows: Int, columns: Int) throws {
            try NumpyFile.write(path, rows: rows, columns: columns, values: (0..<(rows * columns)).map { _ in generator.normal() })
        }
        try write(folder + "/audio/both.npy", rows: 40, columns: 12)
        try write(folder + "/video/both.npy", rows: 25, columns: 10)
        try write(folder + "/audio/speech.npy", rows: 33, columns: 12)
        try write(folder + "/video/face.npy", rows: 18, columns: 10)
        try write(folder + "/audio/=1+2,\"x\".npy", rows: 20, columns: 12)  // a comma, quotes and a formula in an id
        let csv = folder + "/predictions.csv"
        let result = try VAVLBinary.run(["predict", "--checkpoint", Self.checkpoint, "--audio", folder + "/audio",
                                         "--video", folder + "/video", "--output", csv])
        XCTAssertEqual(result.status, 0, result.error)
        let lines = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n").map(String.init)
        XCTAssertEqual(lines[0], "id,head,angry,sad,disgust,fear,neutral,happy,predicted")
        // RFC 4180 quoting, and a leading '=' neutralised for spreadsheets.
        XCTAssertTrue(lines.contains { $0.hasPrefix("\"'=1+2,\"\"x\"\"\",audio,") }, lines.joined(separator: "\n"))
        let byID = Dictionary(uniqueKeysWithValues: lines.dropFirst().filter { !$0.hasPrefix("\"") }
            .map { ($0.split(separator: ",")[0], $0.split(separator: ",")) })
        XCTAssertEqual(byID["both"]?[1], "audio_visual")
        XCTAssertEqual(byID["speech"]?[1], "audio")
        XCTAssertEqual(byID["face"]?[1], "video")
        for row in byID.values {
            let probabilities = row[2..<8].compactMap { Double($0) }
            XCTAssertEqual(probabilities.reduce(0, +), 1, accuracy: 1e-4)
        }
        // One file alone, as JSON.
        let json = folder + "/one.json"
        XCTAssertEqual(try VAVLBinary.run(["predict", "--checkpoint", Self.checkpoint, "--video", folder + "/video/face.npy",
                                           "--output", json]).status, 0)
        let text = try String(contentsOfFile: json, encoding: .utf8)
        let one = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]])
        XCTAssertEqual(one.first?["head"] as? String, "video")
        XCTAssertNotNil(one.first?["predicted_class"] as? String)
        // The classes in the model's label order, not alphabetically.
        let positions = ["angry", "sad", "disgust", "fear", "neutral", "happy"].map { text.range(of: "\"\($0)\"")!.lowerBound }
        XCTAssertEqual(positions, positions.sorted(), text)
        // Wrong dimensions name the file and the utterance.
        let wrong = try VAVLBinary.run(["predict", "--checkpoint", Self.checkpoint, "--audio", folder + "/video/face.npy"])
        XCTAssertNotEqual(wrong.status, 0)
        XCTAssertTrue(wrong.error.contains("face.npy") && wrong.error.contains("10 dimensions, the model expects 12"), wrong.error)
    }

    /// Every JSON vavl writes uses snake_case keys (label names, which are data, excepted —
    /// this corpus's are lower-case words).
    func testEveryJSONOutputHasSnakeCaseKeys() throws {
        let folder = Self.corpus.subfolder("snake")
        func badKeys(_ value: Any, _ path: String = "") -> [String] {
            if let object = value as? [String: Any] {
                return object.flatMap { key, inner in
                    (key.range(of: "^[a-z0-9_]+$", options: .regularExpression) == nil ? [path + "/" + key] : [])
                        + badKeys(inner, path + "/" + key)
                }
            }
            return (value as? [Any])?.flatMap { badKeys($0, path + "[]") } ?? []
        }
        func check(_ text: String, _ what: String) throws {
            let value = try JSONSerialization.jsonObject(with: Data(text.utf8))
            XCTAssertEqual(badKeys(value), [], what)
        }
        let synth = try VAVLBinary.run(["corpus", "synth", "--preset", "crema-d", "--output", folder + "/c.h5", "--dims", "8,6",
                                        "--utterances", "60", "--json"])
        XCTAssertEqual(synth.status, 0, synth.error)
        try check(synth.output, "corpus synth --json")
        let inspect = try VAVLBinary.run(["corpus", "inspect", Self.corpus.path, "--json"])
        XCTAssertEqual(inspect.status, 0, inspect.error)
        try check(inspect.output, "corpus inspect --json")
        let scores = folder + "/scores.json"
        XCTAssertEqual(try VAVLBinary.run(["evaluate", "--checkpoint", Self.checkpoint, "--corpus", Self.corpus.path,
                                           "--json", scores]).status, 0)
        try check(try String(contentsOfFile: scores, encoding: .utf8), "evaluate --json")
        let run = (Self.checkpoint as NSString).deletingLastPathComponent
        try check(try String(contentsOfFile: run + "/config.json", encoding: .utf8), "config.json")
        for line in try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8).split(separator: "\n") {
            try check(String(line), "metrics.jsonl")
        }
    }

    /// `summary` only builds a model and `bench` only times steps: they do not offer the
    /// flags they would ignore (schedule flags; step flags in `summary`).
    func testCommandsOfferOnlyFlagsTheyUse() throws {
        for (command, flag) in [(["summary"], "--lr"), (["summary"], "--precision"), (["summary"], "--batch-size"),
                                (["bench"], "--epochs"), (["bench"], "--seed"), (["bench"], "--lr")] {
            let result = try VAVLBinary.run(command + ["--model", "tiny", flag, "1"])
            XCTAssertNotEqual(result.status, 0, "\(command) \(flag)")
            XCTAssertTrue(result.error.contains("Unknown option '\(flag)'"), result.error)
        }
        let summary = try VAVLBinary.run(["summary", "--model", "tiny", "--alpha", "0", "--no-av-head"])
        XCTAssertEqual(summary.status, 0, summary.error)
        XCTAssertTrue(summary.output.contains("recon_a") && summary.output.contains("head_av"), summary.output)
    }

    /// `vavl plot RUN` draws the run's loss and development curves from metrics.jsonl; a
    /// damaged log is an error naming its line, not a plot.
    func testPlotDrawsTheRunsCurves() throws {
        let run = (Self.checkpoint as NSString).deletingLastPathComponent
        let folder = Self.corpus.subfolder("plot")
        let result = try VAVLBinary.run(["plot", run, "--output", folder + "/curves"])
        XCTAssertEqual(result.status, 0, result.error)
        let loss = try String(contentsOfFile: folder + "/curves-loss.svg", encoding: .utf8)
        let development = try String(contentsOfFile: folder + "/curves-dev.svg", encoding: .utf8)
        XCTAssertTrue(loss.hasPrefix("<svg") || loss.contains("<svg"), loss)
        for series in ["acoustic (train)", "visual (train)", "audio_visual (train)", "audio_visual (dev)"] {
            XCTAssertTrue(loss.contains(series), "the loss plot lacks \(series)")
        }
        XCTAssertTrue(development.contains("development f1_macro"), development)
        // One polyline per series, with one point per epoch the run logged.
        let epochs = try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8)
            .components(separatedBy: "\"type\":\"epoch\"").count - 1
        XCTAssertGreaterThan(epochs, 0)
        let polylines = loss.components(separatedBy: "<polyline").dropFirst()
        XCTAssertEqual(polylines.count, 6, "three training phases and three development heads")
        for polyline in polylines {
            let points = polyline.components(separatedBy: "points=\"")[1].components(separatedBy: "\"")[0]
            XCTAssertEqual(points.split(separator: " ").count, epochs, points)
        }
        let damaged = folder + "/metrics.jsonl"
        try Data((try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8) + "{not json\n").utf8)
            .write(to: URL(fileURLWithPath: damaged))
        let bad = try VAVLBinary.run(["plot", damaged])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.error.contains("metrics.jsonl, line") && bad.error.contains("not a JSON object"), bad.error)
    }

    /// A 20,000-frame utterance (it crashed predict: attention memory grew with T²) is
    /// predicted in memory linear in its length; above `--max-frames` it is an error naming it.
    func testPredictOnALongUtteranceAndTheFrameLimit() throws {
        let folder = Self.corpus.subfolder("long")
        var generator = SplitMix64(seed: 3)
        let frames = 20_000
        try NumpyFile.write(folder + "/long.npy", rows: frames, columns: 12, values: (0..<(frames * 12)).map { _ in generator.normal() })
        let result = try VAVLBinary.run(["predict", "--checkpoint", Self.checkpoint, "--audio", folder + "/long.npy",
                                         "--output", folder + "/long.csv"])
        XCTAssertEqual(result.status, 0, result.error)
        let lines = try String(contentsOfFile: folder + "/long.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 2)
        XCTAssertTrue(lines[1].hasPrefix("long,audio,"), String(lines[1]))
        let limited = try VAVLBinary.run(["predict", "--checkpoint", Self.checkpoint, "--audio", folder + "/long.npy",
                                          "--max-frames", "10000"])
        XCTAssertNotEqual(limited.status, 0)
        XCTAssertTrue(limited.error.contains("long.npy") && limited.error.contains("20000 audio frames, above the limit of 10000"),
                      limited.error)
    }

    /// Fuzz: 80 runs of `vavl summary` (which builds the model the flags describe) with
    /// hostile values for one or two model flags. Each either prints the counts or ends
    /// with a usage error (exit 64) or one line naming the flag or key (exit 1) — never a
    /// crash or an attempt to allocate a model far beyond the table's limits.
    func testHostileFlagValues() throws {
        var generator = SplitMix64(seed: 25)
        func pick<T>(_ values: [T]) -> T { values[Int(generator.next() % UInt64(values.count))] }
        let flags = ["--dim", "--heads", "--blocks", "--conv-kernel", "--proj-kernel", "--proj-dim", "--alpha", "--audio-dimension", "--outputs"]
        let values = ["-1", "0", "1", "2", "7", "1e400", "nan", "inf", "99999999999999999999", "abc", "", "3,3", "1,2,3", "0,0,0",
                      "-1,2,3", "1000000,1,1", "2147483648", "16384", "16385", "-0", "0.5", "1,2,3,4"]
        for _ in 0..<80 {
            var arguments = ["summary", "--model", "tiny"]
            for _ in 0..<(1 + Int(generator.next() % 2)) {
                // "--flag=-1" reaches the value check; "--flag -1" is a parse error.
                let (flag, value) = (pick(flags), pick(values))
                arguments += generator.next() % 2 == 0 ? [flag, value] : ["\(flag)=\(value)"]
            }
            let result = try VAVLBinary.run(arguments)
            XCTAssertTrue([0, 1, 64].contains(result.status), "\(arguments): status \(result.status)\n\(result.error)")
            if result.status == 1 {
                XCTAssertTrue(result.error.contains("'") || result.error.contains("--"), "\(arguments): \(result.error)")
            }
        }
        // Sizes each within range whose model would not fit, and bench's counts.
        for arguments in [["summary", "--dim", "16384", "--heads", "1"], ["bench", "--model", "tiny", "--batch-size", "1000000"],
                          ["bench", "--model", "tiny", "--iterations", "0"], ["bench", "--model", "tiny", "--warmup=-1"]] {
            let result = try VAVLBinary.run(arguments)
            XCTAssertTrue([1, 64].contains(result.status), "\(arguments): status \(result.status)\n\(result.error)")
            XCTAssertTrue(result.error.contains("GiB") || result.error.contains("valid"), "\(arguments): \(result.error)")
        }
    }

    func testBadInputsAreClearErrors() throws {
        // A corpus whose dims do not match the checkpoint, and a task mismatch.
        let other = try TinyCorpus(preset: .mspImprov, utterances: 60)
        let mismatch = try VAVLBinary.run(["evaluate", "--checkpoint", Self.checkpoint, "--corpus", other.path])
        XCTAssertNotEqual(mismatch.status, 0)
        XCTAssertTrue(mismatch.error.contains("the corpus is dimensional but the checkpoint"), mismatch.error)
        // A missing split: every utterance of this corpus is train.
        let trainOnly = Self.corpus.folder + "/train-only.csv"
        let corpus = try Corpus.open(Self.corpus.path)
        try Data((["FileName,Split_Set"] + corpus.ids.map { "\($0).wav,Train" }).joined(separator: "\n").utf8)
            .write(to: URL(fileURLWithPath: trainOnly))
        let missing = try VAVLBinary.run(["evaluate", "--checkpoint", Self.checkpoint, "--corpus", Self.corpus.path,
                                          "--partition", trainOnly])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.error.contains("the test split has no utterances"), missing.error)
        // A corrupt checkpoint.
        let corrupt = Self.corpus.folder + "/bad.h5"
        try Data(repeating: 1, count: 100).write(to: URL(fileURLWithPath: corrupt))
        let bad = try VAVLBinary.run(["evaluate", "--checkpoint", corrupt, "--corpus", Self.corpus.path])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.error.contains("bad.h5: not an HDF5 file"), bad.error)
        // Resuming with a checkpoint of another model.
        let resume = try VAVLBinary.run(["train", "--corpus", Self.corpus.path, "--out", Self.corpus.subfolder("resume-bad"),
                                         "--model", "tiny", "--dim", "24", "--heads", "4", "--resume", Self.checkpoint, "--quiet"])
        XCTAssertNotEqual(resume.status, 0)
        XCTAssertTrue(resume.error.contains("cannot change on resume") && resume.error.contains("dim 16 → 24"), resume.error)
        // An unwritable output folder fails before training.
        let unwritable = try VAVLBinary.run(["train", "--corpus", Self.corpus.path, "--out", "/proc/vavl-run", "--model", "tiny"])
        XCTAssertNotEqual(unwritable.status, 0)
        XCTAssertTrue(unwritable.error.contains("/proc/vavl-run"), unwritable.error)
    }
}

extension Data {
    /// Re-encodes snake_case JSON keys as camelCase for decoding with default strategies.
    func keysFromSnakeCase() throws -> Data {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let object = try JSONSerialization.jsonObject(with: self)
        func convert(_ value: Any) -> Any {
            if let dictionary = value as? [String: Any] {
                return Dictionary(uniqueKeysWithValues: dictionary.map { key, value in
                    (key.contains("_") && !["audio_visual"].contains(key) && !key.hasPrefix("f1_") && !key.hasPrefix("ccc_")
                        ? key.split(separator: "_").enumerated().map { $0.offset == 0 ? String($0.element) : $0.element.capitalized }.joined()
                        : key, convert(value))
                })
            }
            if let array = value as? [Any] { return array.map(convert) }
            return value
        }
        return try JSONSerialization.data(withJSONObject: convert(object))
    }
}
