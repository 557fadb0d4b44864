import Foundation
import HDF5
import MPI
@testable import VAVLCore
import VAVLData
@testable import VAVLTraining
import XCTest

final class CheckpointTests: XCTestCase {
    static var corpus: TinyCorpus!

    override class func setUp() {
        corpus = try! TinyCorpus()
    }

    override class func tearDown() { corpus = nil }

    /// A run of `iterations` on the shared corpus in its own folder: the trainer, its options
    /// and the path of its checkpoint-last.h5.
    private func trainedRun(_ name: String, iterations: Int) throws -> (Trainer, TrainingOptions, String) {
        var options = Self.corpus.options(name)
        options.maxIterations = iterations
        let trainer = try Trainer(configuration: try Self.corpus.configuration(), options: options, communicator: .selfOnly)
        trainer.run()
        return (trainer, options, options.outputDirectory + "/checkpoint-last.h5")
    }

    func testRoundTripRestoresEveryTensorAndStateField() throws {
        let (trainer, _, path) = try trainedRun("round-trip", iterations: 3)
        let model = VAVLModel(trainer.configuration)
        let adam = Adam(store: model.store, configuration: trainer.configuration.adam)
        let (normalization, state) = try Checkpoint.load(path, into: model, optimizer: adam)
        XCTAssertEqual(allValues(model.store), allValues(trainer.model.store))
        XCTAssertEqual(Array(UnsafeBufferPointer(start: model.store.bufferValues, count: model.store.bufferCount)),
                       Array(UnsafeBufferPointer(start: trainer.model.store.bufferValues, count: trainer.model.store.bufferCount)))
        XCTAssertEqual(Array(UnsafeBufferPointer(start: model.store.counterValues, count: model.store.counters.count)),
                       Array(UnsafeBufferPointer(start: trainer.model.store.counterValues, count: trainer.model.store.counters.count)))
        let original = trainer.algorithm.optimizer
        XCTAssertEqual(adam.steps, original.steps)
        XCTAssertEqual(Array(UnsafeBufferPointer(start: adam.firstMoment, count: model.store.parameterCount)),
                       Array(UnsafeBufferPointer(start: original.firstMoment, count: model.store.parameterCount)))
        XCTAssertEqual(Array(UnsafeBufferPointer(start: adam.secondMoment, count: model.store.parameterCount)),
                       Array(UnsafeBufferPointer(start: original.secondMoment, count: model.store.parameterCount)))
        XCTAssertEqual(normalization.audio, trainer.normalization.audio)
        XCTAssertEqual(normalization.video, trainer.normalization.video)
        XCTAssertEqual(state.iteration, 3)
        XCTAssertEqual(state.samplerPosition, 3)
        XCTAssertEqual(state.epoch, 0)
        XCTAssertEqual(state.seed, 5)
        XCTAssertEqual(state.worldSize, 1)
        XCTAssertEqual(try Checkpoint.configuration(path), trainer.configuration)
        // DESIGN §6 layout: flat dotted names directly under their groups, int64 scalars.
        let file = try HDF5File.open(path)
        XCTAssertEqual(try file.stringAttribute("format"), "vavl-checkpoint")
        XCTAssertEqual(try file.openDataset("params/acoustic.proj.weight").shape, [8, 12, 3])
        XCTAssertEqual(try file.openDataset("buffers/shared.encoder.blocks.0.conv.batchnorm.num_batches_tracked").shape, [])
        XCTAssertEqual(try file.openDataset("optimizer/head_av.out.bias/step").read(as: Int64.self), [3])
        XCTAssertEqual(try file.openGroup("state").attribute("sampler_position", as: Int64.self), 3)
    }

    /// Versions (DESIGN §6): a newer version is refused naming both; version 1 reads with
    /// the table's defaults for keys it lacks; this version's files must hold every key.
    func testCheckpointVersions() throws {
        let (trainer, options, path) = try trainedRun("versions", iterations: 1)
        XCTAssertEqual(try HDF5File.open(path).attribute("version", as: Int64.self), Checkpoint.version)
        func rewrite(version: Int64, dropping key: String?) throws -> String {
            let copy = options.outputDirectory + "/v\(version)-\(key ?? "all").h5"
            try? FileManager.default.removeItem(atPath: copy)
            try FileManager.default.copyItem(atPath: path, toPath: copy)
            let file = try HDF5File.open(copy, writable: true)
            try file.setAttribute("version", value: version)
            if let key {
                var config = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(try file.stringAttribute("config").utf8)) as? [String: Any])
                config[key] = nil
                try file.setAttribute("config", string: String(decoding: try JSONSerialization.data(withJSONObject: config), as: UTF8.self))
            }
            return copy
        }
        func error(_ path: String) -> String {
            do {
                _ = try Checkpoint.load(path, into: VAVLModel(trainer.configuration))
                return ""
            } catch { return "\(error)" }
        }
        let newer = try rewrite(version: Checkpoint.version + 1, dropping: nil)
        XCTAssertTrue(error(newer).contains("version \(Checkpoint.version + 1) was written by a newer vavl"), error(newer))
        XCTAssertTrue(error(try rewrite(version: 0, dropping: nil)).contains("not a valid version"))
        // Version 1, from before `precision` existed: fp32, as it was trained.
        let old = try rewrite(version: 1, dropping: "precision")
        XCTAssertEqual(try Checkpoint.configuration(old).precision, .fp32)
        XCTAssertEqual(error(old), "")
        // This version without a key: damaged, refused naming the key.
        let damaged = try rewrite(version: Checkpoint.version, dropping: "heads")
        XCTAssertTrue(error(damaged).contains("'heads'") && error(damaged).contains("missing"), error(damaged))
        // A parameter whose data was never written (HDF5 would read zeros): refused naming it.
        let forged = try rewrite(version: Checkpoint.version, dropping: nil)
        let params = try HDF5File.open(forged, writable: true).openGroup("params")
        let shape = try params.openDataset("acoustic.proj.weight").shape
        try params.removeForTesting("acoustic.proj.weight")
        _ = try params.createDataset("acoustic.proj.weight", of: Float.self, shape: shape)
        XCTAssertTrue(error(forged).contains("acoustic.proj.weight") && error(forged).contains("does not hold"), error(forged))
    }

    /// A write that fails midway leaves the previous checkpoint in place and loadable, and
    /// no temporary file behind.
    func testFailedWriteLeavesThePreviousCheckpointLoadable() throws {
        let (trainer, options, path) = try trainedRun("atomic", iterations: 1)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        // The write fails after the temporary file is written, before it replaces the checkpoint.
        Checkpoint.failBeforeReplacingForTesting = "a test's failure"
        defer { Checkpoint.failBeforeReplacingForTesting = nil }
        XCTAssertThrowsError(try Checkpoint.write(path, model: trainer.model, optimizer: trainer.algorithm.optimizer,
                                                  normalization: trainer.normalization, state: trainer.state))
        Checkpoint.failBeforeReplacingForTesting = nil
        // A symbolic link planted where the checkpoint goes is refused, not written through.
        let elsewhere = options.outputDirectory + "/elsewhere.h5"
        try Data("keep".utf8).write(to: URL(fileURLWithPath: elsewhere))
        let linked = options.outputDirectory + "/checkpoint-linked.h5"
        try FileManager.default.createSymbolicLink(atPath: linked, withDestinationPath: elsewhere)
        XCTAssertThrowsError(try Checkpoint.write(linked, model: trainer.model, optimizer: trainer.algorithm.optimizer,
                                                  normalization: trainer.normalization, state: trainer.state)) {
            XCTAssertTrue("\($0)".contains("not a regular file"), "\($0)")
        }
        XCTAssertEqual(try String(contentsOfFile: elsewhere, encoding: .utf8), "keep")
        // A checkpoint holding a NaN weight is refused by every loader, naming the tensor.
        let poisoned = options.outputDirectory + "/checkpoint-nan.h5"
        let weight = trainer.model.store.parameters[3]
        trainer.model.store.pointer(weight)[0] = .nan
        try Checkpoint.write(poisoned, model: trainer.model, optimizer: nil, normalization: trainer.normalization, state: trainer.state)
        XCTAssertThrowsError(try TrainedModel(checkpoint: poisoned)) {
            XCTAssertTrue("\($0)".contains(weight.name) && "\($0)".contains("non-finite"), "\($0)")
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), before)
        XCTAssertNoThrow(try TrainedModel(checkpoint: path))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: options.outputDirectory).filter { $0.contains("partial") }, [])
    }

    /// Normalisation statistics and Adam moments are checked like the weights: non-finite
    /// values, a non-positive standard deviation, a negative second moment or a tensor of
    /// the wrong length are errors naming the dataset, and the model is left unchanged.
    func testNonFiniteStatisticsAndMomentsAreRefused() throws {
        let (trainer, options, path) = try trainedRun("poisoned-state", iterations: 1)
        let parameter = trainer.model.store.parameters[2]
        func poisoned(_ name: String, _ change: (HDF5File) throws -> Void) throws -> String {
            let copy = options.outputDirectory + "/\(name).h5"
            try? FileManager.default.removeItem(atPath: copy)
            try FileManager.default.copyItem(atPath: path, toPath: copy)
            try change(try HDF5File.open(copy, writable: true))
            return copy
        }
        func replace<T: HDF5Scalar>(_ group: HDF5Group, _ name: String, _ edit: (inout [T]) -> Void) throws {
            var values = try group.openDataset(name).read(as: T.self)
            edit(&values)
            try group.removeForTesting(name)
            try group.writeDataset(name, values)
        }
        let cases: [(String, String, (HDF5File) throws -> Void)] = [
            ("mean-inf", "audio_mean", { try replace($0.openGroup("normalization"), "audio_mean") { (v: inout [Double]) in v[0] = .infinity } }),
            ("std-zero", "video_std", { try replace($0.openGroup("normalization"), "video_std") { (v: inout [Double]) in v[1] = 0 } }),
            ("std-short", "audio_std", { try replace($0.openGroup("normalization"), "audio_std") { (v: inout [Double]) in v.removeLast() } }),
            ("m-nan", "m", { try replace($0.openGroup("optimizer").openGroup(parameter.name), "m") { (v: inout [Float]) in v[0] = .nan } }),
            ("v-negative", "v", { try replace($0.openGroup("optimizer").openGroup(parameter.name), "v") { (v: inout [Float]) in v[0] = -1 } }),
            ("m-short", "m", { try replace($0.openGroup("optimizer").openGroup(parameter.name), "m") { (v: inout [Float]) in v.removeLast() } }),
        ]
        let store = trainer.model.store
        let before = Array(UnsafeBufferPointer(start: store.values, count: store.parameterCount))
        for (name, dataset, change) in cases {
            let file = try poisoned(name, change)
            XCTAssertThrowsError(try Checkpoint.load(file, into: trainer.model, optimizer: trainer.algorithm.optimizer), name) {
                XCTAssertTrue("\($0)".contains(dataset), "\(name): \($0)")
            }
            XCTAssertEqual(Array(UnsafeBufferPointer(start: store.values, count: store.parameterCount)), before, "\(name) changed the model")
        }
        XCTAssertNoThrow(try Checkpoint.load(path, into: trainer.model, optimizer: trainer.algorithm.optimizer))
    }

    /// Interrupted after epoch 1 and resumed, a run ends with exactly the parameters of an
    /// uninterrupted run (same plan, dropout keys, Adam state, BatchNorm buffers).
    func testResumeAfterAnEpochGivesTheUninterruptedResult() throws {
        let corpus = Self.corpus!
        let configuration = try corpus.configuration(epochs: 2)
        let straight = try Trainer(configuration: configuration, options: corpus.options("straight"), communicator: .selfOnly)
        straight.run()

        var first = corpus.options("interrupted")
        first.maxIterations = straight.planner.batchesPerEpoch  // stop at the end of epoch 0
        let interrupted = try Trainer(configuration: configuration, options: first, communicator: .selfOnly)
        interrupted.run()
        XCTAssertEqual(interrupted.state.epoch, 1)
        var second = corpus.options("interrupted")
        second.resume = first.outputDirectory
        let resumed = try Trainer(configuration: configuration, options: second, communicator: .selfOnly)
        XCTAssertEqual(resumed.state.iteration, straight.planner.batchesPerEpoch)
        resumed.run()
        XCTAssertEqual(resumed.state.iteration, straight.state.iteration)
        XCTAssertEqual(allValues(resumed.model.store), allValues(straight.model.store), "resumed parameters differ")
        XCTAssertEqual(resumed.state.bestEpoch, straight.state.bestEpoch)
    }

    /// Mid-epoch resume continues the same sequence of batches from the saved position.
    func testResumeMidEpochContinuesTheSameSequence() throws {
        let corpus = Self.corpus!
        let configuration = try corpus.configuration(epochs: 1)
        var whole = corpus.options("mid-straight")
        whole.maxIterations = 4
        let straight = try Trainer(configuration: configuration, options: whole, communicator: .selfOnly)
        straight.run()
        var part = corpus.options("mid-part")
        part.maxIterations = 2
        try Trainer(configuration: configuration, options: part, communicator: .selfOnly).run()
        var rest = corpus.options("mid-part")
        rest.resume = part.outputDirectory
        rest.maxIterations = 4
        let resumed = try Trainer(configuration: configuration, options: rest, communicator: .selfOnly)
        XCTAssertEqual(resumed.state.samplerPosition, 2)
        resumed.run()
        XCTAssertEqual(allValues(resumed.model.store), allValues(straight.model.store))
    }

    func testCheckpointOfAnotherModelIsRejectedWithoutChangingTheModel() throws {
        let corpus = Self.corpus!
        var options = corpus.options("other")
        options.maxIterations = 0
        try Trainer(configuration: try corpus.configuration(), options: options, communicator: .selfOnly).run()
        var other = try corpus.configuration()
        other.dim = 24
        other.heads = 3
        let model = VAVLModel(other)
        model.initialize(seed: 1)
        let before = allValues(model.store)
        XCTAssertThrowsError(try Checkpoint.load(options.outputDirectory + "/checkpoint-last.h5", into: model)) { error in
            XCTAssertTrue("\(error)".contains("checkpoint of another model: dim 16 vs 24"), "\(error)")
        }
        XCTAssertEqual(allValues(model.store), before)
    }

    func testCorruptCheckpointIsAClearError() throws {
        let path = Self.corpus.folder + "/corrupt.h5"
        try Data(repeating: 7, count: 4096).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try TrainedModel(checkpoint: path)) { error in
            XCTAssertTrue("\(error)".contains("not an HDF5 file"), "\(error)")
        }
        // An HDF5 file that is not a checkpoint.
        XCTAssertThrowsError(try TrainedModel(checkpoint: Self.corpus.path)) { error in
            XCTAssertTrue("\(error)".contains("not a VAVL checkpoint"), "\(error)")
        }
    }
}
