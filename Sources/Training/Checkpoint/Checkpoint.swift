import Foundation
#if canImport(Glibc)
import Glibc
#endif
import HDF5
import VAVLCore
import VAVLData

/// Where training stands, stored in a checkpoint's `/state` attributes (DESIGN §6).
public struct TrainingState: Codable, Equatable, Sendable {
    /// Epochs completed before `samplerPosition` (the epoch being trained).
    public var epoch: Int = 0
    /// Global iterations completed.
    public var iteration: Int = 0
    /// Global batches of `epoch` already trained.
    public var samplerPosition: Int = 0
    public var seed: UInt64 = 0
    public var worldSize: Int = 1
    /// Best development loss so far and its epoch (model selection, DESIGN §3).
    public var bestLoss: Double = .infinity
    public var bestEpoch: Int = -1
    /// The corpus the run trains on (`SplitAssignment.fingerprint`); empty in checkpoints
    /// written before it was recorded.
    public var corpusFingerprint = ""

    public init() {}
}

/// Checkpoint files (DESIGN §6): parameters, buffers, Adam state, normalisation statistics,
/// training state and the config, written by rank 0 to a temporary file and renamed.
public enum Checkpoint {
    public static let format = "vavl-checkpoint"
    /// The format version this vavl writes, and the newest it reads (DESIGN §6, versions):
    /// 2 stores every configuration key; 1 (before `precision` existed) may lack keys, which
    /// then take the table's defaults.
    public static let version: Int64 = 2
    /// Tests: a write fails with this problem after the temporary file is written, before it
    /// replaces the checkpoint.
    nonisolated(unsafe) static var failBeforeReplacingForTesting: String?

    /// Writes the checkpoint atomically: a temporary file in the same folder, flushed and
    /// closed, then renamed over `path`. A crash mid-write leaves the previous file intact.
    public static func write(_ path: String, model: TrainableModel, optimizer: Adam?, normalization: Normalization,
                             state: TrainingState) throws {
        try SafeFiles.requireReplaceable(path)
        let temporary = try SafeFiles.createTemporary(for: path)
        do {
            // The prefetch thread may be reading the corpus: HDF5 calls are serialised.
            try HDF5Lock.withLock {
                try writeFile(temporary, model: model, optimizer: optimizer, normalization: normalization, state: state)
            }
            if let failure = failBeforeReplacingForTesting { throw HDF5Error(file: temporary, object: "", problem: failure) }
            CheckpointFaultInjection.crashIfReplacing(path, temporary: temporary)  // fault tests only (VAVL_TEST_CRASH_DURING_CHECKPOINT=1)
            // On disk before it replaces the previous file, so a node crash after the rename
            // cannot leave a damaged checkpoint-last.h5 for a requeued job.
            try synchronize(temporary)
            guard rename(temporary, path) == 0 else {
                throw HDF5Error(file: path, object: "", problem: "cannot rename \(temporary) into place: \(String(cString: strerror(errno)))")
            }
        } catch {
            unlink(temporary)
            throw error
        }
    }

    private static func synchronize(_ path: String) throws {
        let descriptor = Glibc.open(path, O_RDONLY)
        guard descriptor >= 0 else {
            throw HDF5Error(file: path, object: "", problem: "cannot reopen to sync: \(String(cString: strerror(errno)))")
        }
        defer { Glibc.close(descriptor) }
        guard fsync(descriptor) == 0 else {
            throw HDF5Error(file: path, object: "", problem: "fsync failed: \(String(cString: strerror(errno)))")
        }
    }

    private static func writeFile(_ path: String, model: TrainableModel, optimizer: Adam?, normalization: Normalization,
                                  state: TrainingState) throws {
        let file = try HDF5File.create(path)
        let store = model.store
        try file.setAttribute("format", string: format)
        try file.setAttribute("version", value: version)
        try file.setAttribute("config", json: model.configuration)
        let params = try file.createGroup("params")
        for parameter in store.parameters {
            try params.writeDataset(parameter.name, store.valuesArray(parameter), shape: parameter.shape)
        }
        let buffers = try file.createGroup("buffers")
        for buffer in store.buffers {
            try buffers.writeDataset(buffer.name, Array(UnsafeBufferPointer(start: store.pointer(buffer), count: buffer.count)),
                                     shape: buffer.shape)
        }
        for counter in store.counters {
            try buffers.writeDataset(counter.name, [store.counterValues[counter.index]], shape: [])
        }
        if let optimizer {
            let group = try file.createGroup("optimizer")
            for (index, parameter) in store.parameters.enumerated() {
                let entry = try group.createGroup(parameter.name)
                try entry.writeDataset("m", Array(UnsafeBufferPointer(start: optimizer.firstMoment + parameter.offset, count: parameter.count)),
                                       shape: parameter.shape)
                try entry.writeDataset("v", Array(UnsafeBufferPointer(start: optimizer.secondMoment + parameter.offset, count: parameter.count)),
                                       shape: parameter.shape)
                try entry.writeDataset("step", [optimizer.steps[index]], shape: [])
            }
        }
        let normalizationGroup = try file.createGroup("normalization")
        for (name, statistics) in [("audio", normalization.audio), ("video", normalization.video)] {
            guard let statistics else { continue }
            try normalizationGroup.writeDataset("\(name)_mean", statistics.mean)
            try normalizationGroup.writeDataset("\(name)_std", statistics.std)
            try normalizationGroup.setAttribute("\(name)_frames", value: Int64(statistics.frameCount))
        }
        let stateGroup = try file.createGroup("state")
        try stateGroup.setAttribute("epoch", value: Int64(state.epoch))
        try stateGroup.setAttribute("iteration", value: Int64(state.iteration))
        try stateGroup.setAttribute("sampler_position", value: Int64(state.samplerPosition))
        try stateGroup.setAttribute("seed", value: Int64(bitPattern: state.seed))
        try stateGroup.setAttribute("world_size", value: Int64(state.worldSize))
        try stateGroup.setAttribute("best_loss", value: state.bestLoss)
        try stateGroup.setAttribute("best_epoch", value: Int64(state.bestEpoch))
        try stateGroup.setAttribute("corpus_fingerprint", string: state.corpusFingerprint)
        try file.flush()
        try file.closeChecked()
    }

    /// The config stored in a checkpoint, after checking format and version.
    public static func configuration(_ path: String) throws -> VAVLConfiguration {
        let file = try open(path)
        return try storedConfiguration(file, path: path)
    }

    private static func open(_ path: String) throws -> HDF5File {
        let file = try HDF5File.open(path)
        let found = (try? file.stringAttribute("format")) ?? "none"
        guard found == format else {
            throw HDF5Error(file: path, object: "/", problem: "not a VAVL checkpoint (format '\(found)', expected '\(format)')")
        }
        let foundVersion = try file.attribute("version", as: Int64.self)
        guard foundVersion <= version else {
            throw HDF5Error(file: path, object: "/", problem: "checkpoint version \(foundVersion) was written by a newer vavl; this one (\(VAVLVersion.current)) reads versions 1…\(version)")
        }
        guard foundVersion >= 1 else {
            throw HDF5Error(file: path, object: "/", problem: "checkpoint version \(foundVersion) is not a valid version")
        }
        return file
    }

    /// Loads parameters, buffers and (if given) Adam state into `model` and `optimizer`,
    /// checking every name and shape; returns the normalisation and the training state.
    /// Nothing in `model` changes unless the whole file is consistent.
    public static func load(_ path: String, into model: TrainableModel, optimizer: Adam? = nil) throws -> (Normalization, TrainingState) {
        let file = try open(path)
        let store = model.store
        let stored = try storedConfiguration(file, path: path)
        // Storage the file does not hold would read as zeros: plausible weights, not an error.
        let fileSize = ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
        func checked(_ dataset: HDF5Dataset) throws -> HDF5Dataset {
            try dataset.checkStorage(fileSize: fileSize)
            return dataset
        }
        /// `values` if every one is finite (and, with `count`, there are that many).
        func finite<Value: BinaryFloatingPoint>(_ values: [Value], _ dataset: HDF5Dataset, _ what: String,
                                                count: Int? = nil) throws -> [Value] {
            if let count, values.count != count {
                throw HDF5Error(file: path, object: dataset.path, problem: "\(values.count) values, the model needs \(count)")
            }
            if let bad = values.firstIndex(where: { !$0.isFinite }) {
                throw HDF5Error(file: path, object: dataset.path, problem: "value \(bad) is \(values[bad]): the checkpoint holds non-finite \(what)")
            }
            return values
        }
        try ensureCompatible(stored, model.configuration, path: path)
        var parameterValues: [[Float]] = []
        let params = try file.openGroup("params")
        for parameter in store.parameters {
            let dataset = try checked(params.openDataset(parameter.name))
            guard dataset.shape == parameter.shape else {
                throw HDF5Error(file: path, object: dataset.path, problem: "shape \(dataset.shape), the model needs \(parameter.shape)")
            }
            // A model with NaN or infinite weights scores nothing meaningfully: refused here,
            // for every command that loads a checkpoint.
            parameterValues.append(try finite(dataset.read(as: Float.self), dataset, "parameters"))
        }
        let buffers = try file.openGroup("buffers")
        var bufferValues: [[Float]] = []
        for buffer in store.buffers {
            let dataset = try checked(buffers.openDataset(buffer.name))
            guard dataset.elementCount == buffer.count else {
                throw HDF5Error(file: path, object: dataset.path, problem: "\(dataset.elementCount) values, the model needs \(buffer.count)")
            }
            bufferValues.append(try finite(dataset.read(as: Float.self), dataset, "statistics"))
        }
        let counterValues = try store.counters.map { try buffers.openDataset($0.name).read(as: Int64.self).first ?? 0 }
        var moments: [([Float], [Float], Int64)] = []
        if optimizer != nil {
            let group = try file.openGroup("optimizer")
            for parameter in store.parameters {
                let entry = try group.openGroup(parameter.name)
                let first = try checked(entry.openDataset("m")), second = try checked(entry.openDataset("v"))
                let m = try finite(first.read(as: Float.self), first, "optimizer moments", count: parameter.count)
                let v = try finite(second.read(as: Float.self), second, "optimizer moments", count: parameter.count)
                if let bad = v.firstIndex(where: { $0 < 0 }) {
                    throw HDF5Error(file: path, object: second.path, problem: "value \(bad) is \(v[bad]): a second moment cannot be negative")
                }
                let step = try entry.openDataset("step").read(as: Int64.self).first ?? 0
                guard step >= 0 else { throw HDF5Error(file: path, object: entry.path, problem: "step \(step) is negative") }
                moments.append((m, v, step))
            }
        }
        let normalizationGroup = try file.openGroup("normalization")
        func statistics(_ name: String) throws -> FeatureStatistics? {
            guard normalizationGroup.contains("\(name)_mean") else { return nil }
            let frames = (try? normalizationGroup.attribute("\(name)_frames", as: Int64.self)) ?? 0
            let dimension = name == "audio" ? model.configuration.audioDimension : model.configuration.videoDimension
            let meanDataset = try checked(normalizationGroup.openDataset("\(name)_mean"))
            let stdDataset = try checked(normalizationGroup.openDataset("\(name)_std"))
            let std = try finite(stdDataset.read(as: Double.self), stdDataset, "normalisation statistics", count: dimension)
            if let bad = std.firstIndex(where: { $0 <= 0 }) {
                throw HDF5Error(file: path, object: stdDataset.path, problem: "value \(bad) is \(std[bad]): a standard deviation must be positive")
            }
            return FeatureStatistics(mean: try finite(meanDataset.read(as: Double.self), meanDataset, "normalisation statistics", count: dimension),
                                     std: std, frameCount: Int(max(frames, 0)))
        }
        let normalization = Normalization(audio: try statistics("audio"), video: try statistics("video"))
        let stateGroup = try file.openGroup("state")
        var state = TrainingState()
        state.epoch = Int(try stateGroup.attribute("epoch", as: Int64.self))
        state.iteration = Int(try stateGroup.attribute("iteration", as: Int64.self))
        state.samplerPosition = Int(try stateGroup.attribute("sampler_position", as: Int64.self))
        state.seed = UInt64(bitPattern: try stateGroup.attribute("seed", as: Int64.self))
        state.worldSize = Int(try stateGroup.attribute("world_size", as: Int64.self))
        state.bestLoss = (try? stateGroup.attribute("best_loss", as: Double.self)) ?? .infinity
        state.bestEpoch = Int((try? stateGroup.attribute("best_epoch", as: Int64.self)) ?? -1)
        if stateGroup.hasAttribute("corpus_fingerprint") {
            state.corpusFingerprint = try stateGroup.stringAttribute("corpus_fingerprint")
        }

        // Everything read and checked: now change the model.
        for (parameter, values) in zip(store.parameters, parameterValues) { store.setValues(parameter, values) }
        for (buffer, values) in zip(store.buffers, bufferValues) { store.setValues(buffer, values) }
        for (counter, value) in zip(store.counters, counterValues) { store.counterValues[counter.index] = value }
        if let optimizer {
            for (index, (parameter, moment)) in zip(store.parameters, moments).enumerated() {
                (optimizer.firstMoment + parameter.offset).update(from: moment.0, count: parameter.count)
                (optimizer.secondMoment + parameter.offset).update(from: moment.1, count: parameter.count)
                optimizer.steps[index] = moment.2
            }
        }
        return (normalization, state)
    }

    /// The fields that define the model (``ResumeRule/fixed`` in the configuration table)
    /// must agree; the others may differ (a resumed run can change the epoch count, say).
    public static func ensureCompatible(_ stored: VAVLConfiguration, _ model: VAVLConfiguration, path: String) throws {
        let differences = model.incompatibilities(with: stored)
        if !differences.isEmpty {
            throw HDF5Error(file: path, object: "/", problem: "checkpoint of another model: " + differences.joined(separator: ", "))
        }
    }

    /// The stored config, decoded strictly and validated (an out-of-range size in a crafted
    /// file is an error naming the file and key, before anything is allocated from it).
    private static func storedConfiguration(_ file: HDF5File, path: String) throws -> VAVLConfiguration {
        // This version's checkpoints hold every key; older ones take defaults for keys they lack.
        let current = try file.attribute("version", as: Int64.self) == version
        let configuration = try file.attribute("config", json: VAVLConfiguration.self,
                                               userInfo: [VAVLConfiguration.sourceKey: "\(path): config",
                                                          VAVLConfiguration.requireEveryKey: current])
        try configuration.validate(source: "\(path): config")
        return configuration
    }
}
