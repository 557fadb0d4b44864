import Foundation
import HDF5
#if canImport(Glibc)
import Glibc
#endif

/// What a corpus holds besides its utterances: the task, the label columns and scale, the
/// feature dimensions and frame rates (the root attributes of DESIGN §5).
public struct CorpusDescription: Codable, Equatable, Sendable {
    public var task: PredictionTask
    /// K label column names, in the order of the labels passed to ``CorpusWriter/append(id:speaker:split:labels:audio:video:)``.
    public var labelNames: [String]
    /// The rating scale (required for dimensional and sentiment corpora, optional for categorical).
    public var labelRange: ClosedRange<Double>?
    /// d_a and d_v. A dimension of 0 means the corpus has no frames of that modality at all.
    public var audioDimension: Int
    public var videoDimension: Int
    public var audioFramesPerSecond: Double
    public var videoFramesPerSecond: Double

    public init(task: PredictionTask, labelNames: [String], labelRange: ClosedRange<Double>? = nil,
                audioDimension: Int, videoDimension: Int,
                audioFramesPerSecond: Double = 50, videoFramesPerSecond: Double = 30) {
        self.task = task
        self.labelNames = labelNames
        self.labelRange = labelRange
        self.audioDimension = audioDimension
        self.videoDimension = videoDimension
        self.audioFramesPerSecond = audioFramesPerSecond
        self.videoFramesPerSecond = videoFramesPerSecond
    }

    public func dimension(_ modality: Modality) -> Int {
        modality == .audio ? audioDimension : videoDimension
    }
}

/// Writes a corpus file (DESIGN §5) utterance by utterance, streaming and atomically.
///
/// Frames are staged in chunk-sized buffers and appended to extendible, chunked
/// `/audio/features` and `/video/features` datasets one whole chunk at a time, so memory
/// stays at a chunk per modality plus the per-utterance metadata (ids, speakers, splits,
/// labels, offsets). Train-split feature statistics (DESIGN §3) are accumulated on the way and
/// stored as `/audio/train_mean`, `/audio/train_std` (float64, with the frame count in the
/// group attribute `train_frames`), likewise for video.
///
/// Everything goes to a hidden temporary file next to the output (`.NAME.partial-PID-RANDOM`, created exclusively: see `SafeFiles`),
/// renamed to the output path by ``finish()`` after a flush and `fsync`. Any error in
/// ``append(id:speaker:split:labels:audio:video:)`` or ``finish()``, a ``cancel()``, or
/// releasing the writer unfinished removes the temporary file, so a failed write leaves
/// nothing behind and never replaces an existing file. After
/// `TemporaryFiles.removeOnInterrupt()`, SIGINT, SIGTERM and SIGHUP remove it too.
public final class CorpusWriter {
    /// The output path, created by ``finish()``.
    public let path: String
    /// Where the corpus is written until ``finish()`` renames it.
    public let temporaryPath: String
    public let description: CorpusDescription

    private var file: HDF5File?
    private var streams: [Staging] = []
    private var ids: [String] = []
    private var idSet: Set<String> = []
    private var speakers: [String] = []
    private var splits: [String] = []
    private var labels: [Float] = []
    private var statistics: [FeatureStatisticsAccumulator]?
    private var state = State.open

    private enum State { case open, finished, abandoned }

    /// The default number of rows per chunk: chunks of about 256 KiB (64 rows at d = 1024),
    /// so that reading one utterance touches a few chunks.
    public static func defaultChunkRows(dimension: Int) -> Int {
        max(1, min(4096, 65_536 / max(dimension, 1)))
    }

    /// Starts a corpus at `path` (written to a temporary file until ``finish()``).
    /// - Parameters:
    ///   - chunkRows: rows per HDF5 chunk for (audio, video); `nil` gives ``defaultChunkRows(dimension:)``.
    ///   - storeStatistics: whether to accumulate and store the train-split statistics.
    public init(path: String, description: CorpusDescription, chunkRows: (audio: Int, video: Int)? = nil,
                storeStatistics: Bool = true) throws {
        self.path = path
        self.description = description
        try SafeFiles.requireReplaceable(path)
        func fail(_ problem: String) -> CorpusError { CorpusError(file: path, problem) }
        guard !description.labelNames.isEmpty else { throw fail("a corpus needs at least one label column") }
        guard Set(description.labelNames).count == description.labelNames.count else {
            throw fail("duplicate label names \(description.labelNames)")
        }
        if description.task == .sentiment && description.labelNames.count != 1 {
            throw fail("a sentiment corpus has exactly one label column, got \(description.labelNames)")
        }
        if description.task != .categorical && description.labelRange == nil {
            throw fail("a \(description.task.rawValue) corpus needs its label range (the rating scale, e.g. 1…5)")
        }
        if let range = description.labelRange, !(range.lowerBound.isFinite && range.upperBound.isFinite && range.lowerBound < range.upperBound) {
            throw fail("the label range must be finite with lo < hi, got \(range)")
        }
        guard description.audioDimension >= 0, description.videoDimension >= 0,
              description.audioDimension + description.videoDimension > 0 else {
            throw fail("feature dimensions must be ≥ 0 and not both 0, got \(description.audioDimension), \(description.videoDimension)")
        }
        guard description.audioFramesPerSecond > 0, description.videoFramesPerSecond > 0 else {
            throw fail("frame rates must be positive")
        }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw fail("the output is a directory")
        }
        let rows = chunkRows ?? (CorpusWriter.defaultChunkRows(dimension: description.audioDimension),
                                 CorpusWriter.defaultChunkRows(dimension: description.videoDimension))
        // Created only once everything above is valid (an error leaves nothing behind), and
        // registered for the interrupt handlers before it exists: an interrupt between its
        // creation and its registration left it behind (seen in the tests).
        let temporaryPath = try SafeFiles.createTemporary(for: path, hidden: true,
                                                          willCreate: TemporaryFiles.track, notCreated: TemporaryFiles.untrack)
        self.temporaryPath = temporaryPath
        do {
            let file = try HDF5Lock.withLock { try HDF5File.create(temporaryPath) }
            self.file = file
            let created = try HDF5Lock.withLock {
                try [Modality.audio, .video].map { modality in
                    let dimension = description.dimension(modality)
                    let dataset: HDF5Dataset
                    if dimension == 0 {
                        dataset = try file.createDataset("\(modality.rawValue)/features", of: Float.self, shape: [0, 0])
                    } else {
                        dataset = try file.createDataset(
                            "\(modality.rawValue)/features", of: Float.self, shape: [0, dimension],
                            layout: DatasetLayout(chunkRows: modality == .audio ? rows.audio : rows.video, extendible: true))
                    }
                    return Staging(modality: modality, dimension: dimension,
                                   chunkRows: modality == .audio ? rows.audio : rows.video, dataset: dataset)
                }
            }
            streams = created
        } catch {
            abandon()
            if let error = error as? HDF5Error {
                throw CorpusError(file: path, "cannot create the temporary file \(temporaryPath): \(error.problem)")
            }
            throw error
        }
        if storeStatistics {
            statistics = [FeatureStatisticsAccumulator(dimension: description.audioDimension),
                          FeatureStatisticsAccumulator(dimension: description.videoDimension)]
        }
    }

    deinit {
        if state == .open { abandon() }
    }

    /// The number of utterances appended so far.
    public var utteranceCount: Int { ids.count }

    // MARK: - Appending

    /// Appends one utterance. `audio` and `video` hold frames × dimension floats, row-major;
    /// `nil` or empty means that modality is missing for this utterance (at least one must be
    /// present). Every value is checked to be finite. Any error removes the temporary file and
    /// ends the write (later calls throw).
    public func append(id: String, speaker: String, split: Split, labels: [Float],
                       audio: UnsafeBufferPointer<Float>?, video: UnsafeBufferPointer<Float>?) throws {
        try guarded {
            func fail(_ problem: String) -> CorpusError { CorpusError(file: path, utterance: id, problem) }
            guard !id.isEmpty else { throw CorpusError(file: path, "utterance \(ids.count) has an empty id") }
            guard !idSet.contains(id) else { throw fail("duplicate id") }
            guard labels.count == description.labelNames.count else {
                throw fail("\(labels.count) labels, expected \(description.labelNames.count) (\(description.labelNames.joined(separator: ", ")))")
            }
            if let bad = labels.firstIndex(where: { !$0.isFinite }) {
                throw fail("label '\(description.labelNames[bad])' is \(labels[bad])")
            }
            let inputs = [audio ?? UnsafeBufferPointer(start: nil, count: 0), video ?? UnsafeBufferPointer(start: nil, count: 0)]
            guard inputs.contains(where: { !$0.isEmpty }) else { throw fail("has neither audio nor video frames") }
            for (stream, values) in zip(streams, inputs) where !values.isEmpty {
                let name = stream.modality.rawValue
                guard stream.dimension > 0 else { throw fail("has \(name) frames but the corpus has no \(name) dimension") }
                guard values.count % stream.dimension == 0 else {
                    throw fail("\(values.count) \(name) values are not whole frames of dimension \(stream.dimension)")
                }
                if let bad = firstNonFinite(values) {
                    throw fail("\(name) feature \(values[bad]) at frame \(bad / stream.dimension), dimension \(bad % stream.dimension)")
                }
            }
            for (index, (stream, values)) in zip(streams, inputs).enumerated() {
                try HDF5Lock.withLock { try stream.append(values) }
                if split == .train, !values.isEmpty { statistics?[index].add(values) }
            }
            ids.append(id)
            idSet.insert(id)
            speakers.append(speaker)
            splits.append(split.rawValue)
            self.labels.append(contentsOf: labels)
        }
    }

    /// Appends one utterance from arrays (empty = modality missing).
    public func append(id: String, speaker: String, split: Split, labels: [Float], audio: [Float], video: [Float]) throws {
        try audio.withUnsafeBufferPointer { audio in
            try video.withUnsafeBufferPointer { video in
                try append(id: id, speaker: speaker, split: split, labels: labels, audio: audio, video: video)
            }
        }
    }

    // MARK: - Finishing

    /// Writes the metadata, flushes, syncs and renames the temporary file to ``path``
    /// (replacing any file there). Returns the size of the corpus in bytes.
    @discardableResult
    public func finish() throws -> Int {
        try guarded {
            guard !ids.isEmpty else { throw CorpusError(file: path, "no utterances were written") }
            guard let file else { throw CorpusError(file: path, "the writer is closed") }
            try HDF5Lock.withLock {
                try file.setAttribute("format", string: CorpusFormat.name)
                try file.setAttribute("version", value: CorpusFormat.version)
                try file.setAttribute("task", string: description.task.rawValue)
                try file.setAttribute("label_names", strings: description.labelNames)
                try file.setAttribute("audio_fps", value: description.audioFramesPerSecond)
                try file.setAttribute("video_fps", value: description.videoFramesPerSecond)
                if let range = description.labelRange {
                    try file.setAttribute("label_range", values: [range.lowerBound, range.upperBound])
                }
                try file.writeStrings("utterances/id", ids)
                try file.writeStrings("utterances/speaker", speakers)
                try file.writeStrings("utterances/split", splits)
                try file.writeDataset("labels", labels, shape: [ids.count, description.labelNames.count])
                for (index, stream) in streams.enumerated() {
                    try stream.flush()
                    let group = try file.openGroup(stream.modality.rawValue)
                    try group.setAttribute("dimension", value: Int64(stream.dimension))
                    try group.writeDataset("offsets", stream.offsets)
                    if let result = statistics?[index].statistics {
                        try group.writeDataset("train_mean", result.mean)
                        try group.writeDataset("train_std", result.std)
                        try group.setAttribute("train_frames", value: Int64(result.frameCount))
                    }
                    try stream.dataset.closeChecked()
                }
                try file.flush()
                try file.closeChecked()
            }
            self.file = nil
            let descriptor = Glibc.open(temporaryPath, O_RDONLY)
            if descriptor >= 0 { fsync(descriptor); Glibc.close(descriptor) }
            guard rename(temporaryPath, path) == 0 else {
                throw CorpusError(file: path, "cannot rename \(temporaryPath) to the output: \(String(cString: strerror(errno)))")
            }
            state = .finished
            TemporaryFiles.untrack(temporaryPath)
            let attributes = try? FileManager.default.attributesOfItem(atPath: path)
            return (attributes?[.size] as? Int) ?? 0
        }
    }

    /// Abandons the write and removes the temporary file. Nothing is left at ``path``.
    public func cancel() {
        if state == .open { abandon() }
    }

    /// Runs `body`; on any error abandons the write (temporary file removed) and rethrows.
    private func guarded<R>(_ body: () throws -> R) throws -> R {
        guard state == .open else {
            throw CorpusError(file: path, state == .finished ? "the corpus is already finished" : "the write was abandoned after an error")
        }
        do {
            return try body()
        } catch {
            abandon()
            if let error = error as? HDF5Error {
                throw CorpusError(file: path, "writing \(temporaryPath): \(error.object): \(error.problem)")
            }
            throw error
        }
    }

    private func abandon() {
        state = .abandoned
        HDF5Lock.withLock {
            for stream in streams { stream.dataset.close() }
            file?.close()
        }
        file = nil
        unlink(temporaryPath)
        TemporaryFiles.untrack(temporaryPath)
    }

    // MARK: - Staging

    /// One modality's chunk-sized staging buffer and its offsets.
    private final class Staging {
        let modality: Modality
        let dimension: Int
        let chunkRows: Int
        let dataset: HDF5Dataset
        let buffer: UnsafeMutablePointer<Float>
        var stagedRows = 0
        var offsets: [Int64] = [0]

        init(modality: Modality, dimension: Int, chunkRows: Int, dataset: HDF5Dataset) {
            self.modality = modality
            self.dimension = dimension
            self.chunkRows = max(1, chunkRows)
            self.dataset = dataset
            buffer = .allocate(capacity: max(1, self.chunkRows * dimension))
        }

        deinit { buffer.deallocate() }

        /// Copies whole frames into the staging buffer, appending each full chunk to the file.
        func append(_ values: UnsafeBufferPointer<Float>) throws {
            let rows = dimension == 0 ? 0 : values.count / dimension
            var copied = 0
            while copied < rows {
                let take = min(rows - copied, chunkRows - stagedRows)
                (buffer + stagedRows * dimension).update(from: values.baseAddress! + copied * dimension, count: take * dimension)
                stagedRows += take
                copied += take
                if stagedRows == chunkRows { try flush() }
            }
            offsets.append(offsets.last! + Int64(rows))
        }

        /// Appends the staged rows (a partial chunk only at the end).
        func flush() throws {
            guard stagedRows > 0 else { return }
            try dataset.append(UnsafeBufferPointer(start: buffer, count: stagedRows * dimension))
            stagedRows = 0
        }
    }
}
