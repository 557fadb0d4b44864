import Foundation
import HDF5

/// A corpus file (DESIGN §5) opened for reading. The metadata, labels and offsets are loaded
/// and validated on open; features stay on disk and are read one utterance at a time by row
/// range, so a corpus of many gigabytes never has to fit in memory.
///
/// Reading is safe from several threads (e.g. a prefetch thread): every HDF5 call holds
/// ``HDF5Lock``.
public final class Corpus: @unchecked Sendable {
    /// The file this corpus was opened from; every error names it.
    public let path: String
    /// The file's size and modification time when it was opened (``ensureUnchanged()``).
    private let openedAs: (size: Int64, modified: timespec)
    public let task: PredictionTask
    /// The names of the label columns, K of them, in the order of ``labels``' columns.
    public let labelNames: [String]
    /// The rating scale of dimensional and sentiment labels (e.g. 1…5, −3…3); `nil` for
    /// categorical corpora that do not give one.
    public let labelRange: ClosedRange<Double>?
    public let audioFramesPerSecond: Double
    public let videoFramesPerSecond: Double
    /// Utterance ids (unique), speakers and splits, N of each, in corpus row order.
    public let ids: [String]
    public let speakers: [String]
    public let splits: [Split]
    /// N × K labels, row-major, on the raw scale (class distributions or attribute values).
    public let labels: [Float]

    private let file: HDF5File
    private let audio: Stream
    private let video: Stream

    /// One modality's offsets (N + 1, in memory) and its open features dataset.
    private struct Stream {
        var offsets: [Int]
        var dimension: Int
        var features: HDF5Dataset
        var statistics: FeatureStatistics?
    }

    /// The number of utterances, N.
    public var utteranceCount: Int { ids.count }
    /// The number of label columns, K.
    public var labelCount: Int { labelNames.count }

    // MARK: - Opening

    /// Opens and validates the corpus at `path`. Throws a ``CorpusError`` naming the file
    /// (and the offending utterance id where there is one) for a wrong format or version,
    /// missing or mistyped datasets, label rows ≠ N, NaN/Inf labels, unknown split names,
    /// duplicate ids, non-monotone offsets, offsets past the end, dimension mismatches and
    /// utterances with neither modality. Feature values are not scanned here (see
    /// ``readFrames(_:utterance:into:)`` and ``validateCorpus(_:maximumProblems:progress:)``).
    /// Throws if the file changed on disk since it was opened: HDF5 reads zeros past the end
    /// of a file truncated under it, without an error, so a job would train on zeros. The
    /// loader checks before every batch it reads (one `stat`).
    public func ensureUnchanged() throws {
        let now = try Self.fileState(path)
        guard now.size == openedAs.size, now.modified.tv_sec == openedAs.modified.tv_sec,
              now.modified.tv_nsec == openedAs.modified.tv_nsec else {
            throw CorpusError(file: path, "the corpus changed on disk while the job was reading it (size \(openedAs.size) → \(now.size) bytes): "
                              + "stopping rather than reading stale or missing data")
        }
    }

    private static func fileState(_ path: String) throws -> (size: Int64, modified: timespec) {
        var status = stat()
        guard stat(path, &status) == 0 else {
            throw CorpusError(file: path, errno == ENOENT ? "no such file" : "cannot stat the corpus: \(String(cString: strerror(errno)))")
        }
        guard (status.st_mode & S_IFMT) == S_IFREG else { throw CorpusError(file: path, "not a regular file") }
        return (Int64(status.st_size), status.st_mtim)
    }

    public static func open(_ path: String) throws -> Corpus {
        try HDF5Lock.withLock {
            do {
                return try Corpus(path: path)
            } catch let error as HDF5Error {
                throw CorpusError(file: path, error.object.isEmpty || error.object == "/"
                                  ? error.problem : "\(error.object): \(error.problem)")
            }
        }
    }

    private init(path: String) throws {
        func fail(_ utterance: String?, _ problem: String) -> CorpusError {
            CorpusError(file: path, utterance: utterance, problem)
        }
        func fail(_ problem: String) -> CorpusError { CorpusError(file: path, problem) }
        openedAs = try Self.fileState(path)
        let fileSize = Int(openedAs.size)
        let file = try HDF5File.open(path)

        // Root attributes.
        guard file.hasAttribute("format") else {
            throw fail("not a vavl corpus: the root attribute 'format' is missing")
        }
        let format = try file.stringAttribute("format")
        guard format == CorpusFormat.name else {
            throw fail("not a vavl corpus: format is '\(format)', expected '\(CorpusFormat.name)'")
        }
        let version = try file.attribute("version", as: Int64.self)
        guard version == CorpusFormat.version else {
            throw fail("unsupported corpus version \(version) (this reader knows version \(CorpusFormat.version))")
        }
        let taskName = try file.stringAttribute("task")
        guard let task = PredictionTask(rawValue: taskName) else {
            throw fail("unknown task '\(taskName)' (expected categorical, dimensional or sentiment)")
        }
        let labelNames = try file.stringsAttribute("label_names")
        guard !labelNames.isEmpty else { throw fail("label_names is empty") }
        guard Set(labelNames).count == labelNames.count else { throw fail("label_names has duplicates: \(labelNames)") }
        if task == .sentiment && labelNames.count != 1 {
            throw fail("a sentiment corpus has one label column, label_names has \(labelNames.count)")
        }
        var labelRange: ClosedRange<Double>?
        if file.hasAttribute("label_range") {
            let range = try file.attributeValues("label_range", as: Double.self)
            guard range.count == 2, range[0].isFinite, range[1].isFinite, range[0] < range[1] else {
                throw fail("label_range must be two finite numbers lo < hi, found \(range)")
            }
            labelRange = range[0]...range[1]
        } else if task != .categorical {
            throw fail("a \(task.rawValue) corpus needs the root attribute label_range = [lo, hi] (its rating scale)")
        }
        let audioFramesPerSecond = try file.attribute("audio_fps", as: Double.self)
        let videoFramesPerSecond = try file.attribute("video_fps", as: Double.self)
        for (name, value) in [("audio_fps", audioFramesPerSecond), ("video_fps", videoFramesPerSecond)] {
            guard value.isFinite, value > 0 else { throw fail("\(name) must be a positive number, found \(value)") }
        }

        // Utterances.
        let ids = try file.openDataset("utterances/id").readStrings()
        let count = ids.count
        let speakers = try file.openDataset("utterances/speaker").readStrings()
        let splitNames = try file.openDataset("utterances/split").readStrings()
        for (name, list) in [("speaker", speakers), ("split", splitNames)] where list.count != count {
            throw fail(list.count < count ? ids[list.count] : nil,
                       "/utterances/\(name) has \(list.count) entries for \(count) utterance ids")
        }
        var firstRow: [String: Int] = [:]
        firstRow.reserveCapacity(count)
        for (row, id) in ids.enumerated() {
            if id.isEmpty { throw fail("utterance \(row) has an empty id") }
            if let previous = firstRow.updateValue(row, forKey: id) {
                throw fail(id, "duplicate id (rows \(previous) and \(row))")
            }
        }
        let splits = try zip(ids, splitNames).map { id, name in
            guard let split = Split(rawValue: name) else {
                throw fail(id, "unknown split '\(name)' (expected train, dev or test)")
            }
            return split
        }

        // Labels.
        let labelSet = try file.openDataset("labels")
        try labelSet.checkStorage(fileSize: fileSize)
        var labelShape = labelSet.shape
        let labelCount = labelNames.count
        if labelShape.count == 1 && labelCount == 1 { labelShape.append(1) }
        guard labelShape.count == 2 else {
            throw fail("/labels has shape \(labelShape), expected N × K = \(count) × \(labelCount)")
        }
        if labelShape[0] != count {
            throw fail(labelShape[0] < count ? ids[labelShape[0]] : nil,
                       "/labels has \(labelShape[0]) rows for \(count) utterances" +
                       (labelShape[0] < count ? " (this utterance and the ones after it have no label row)" : ""))
        }
        guard labelShape[1] == labelCount else {
            throw fail("dimension mismatch: /labels has \(labelShape[1]) columns, label_names has \(labelCount)")
        }
        guard labelSet.storedType.typeClass == Float.typeClass else {
            throw fail("/labels must be float32 or float64")
        }
        let labels = try labelSet.read(as: Float.self)
        for (index, value) in labels.enumerated() where !value.isFinite {
            throw fail(ids[index / labelCount], "label '\(labelNames[index % labelCount])' is \(value)")
        }

        // Modalities.
        func stream(_ modality: Modality) throws -> Stream {
            let name = modality.rawValue
            guard file.contains(name) else { throw fail("the group /\(name) is missing") }
            let offsetSet = try file.openDataset("\(name)/offsets")
            guard offsetSet.shape.count == 1, offsetSet.storedType.typeClass == Int64.typeClass else {
                throw fail("/\(name)/offsets must be a 1-D integer dataset, found shape \(offsetSet.shape)")
            }
            try offsetSet.checkStorage(fileSize: fileSize)
            let raw = try offsetSet.read(as: Int64.self)
            guard raw.count == count + 1 else {
                throw fail(raw.count < count + 1 && raw.count > 0 ? ids[raw.count - 1] : nil,
                           "dimension mismatch: /\(name)/offsets has \(raw.count) entries, expected N + 1 = \(count + 1)")
            }
            let features = try file.openDataset("\(name)/features")
            let shape = features.shape
            guard shape.count == 2 else {
                throw fail("dimension mismatch: /\(name)/features has shape \(shape), expected frames × dimension")
            }
            guard features.storedType.typeClass == Float.typeClass else {
                throw fail("/\(name)/features must be float32 or float64")
            }
            let rows = shape[0], dimension = shape[1]
            if raw[0] < 0 { throw fail(ids.first, "/\(name)/offsets starts at \(raw[0]), below 0") }
            for index in 0..<count {
                if raw[index + 1] < raw[index] {
                    throw fail(ids[index], "non-monotone /\(name)/offsets: rows \(raw[index]) ..< \(raw[index + 1])")
                }
                if raw[index + 1] > rows {
                    throw fail(ids[index], "/\(name)/offsets past the end: rows \(raw[index]) ..< \(raw[index + 1]) of \(rows) in /\(name)/features")
                }
                if raw[index + 1] - raw[index] > Int64(FrameLimit.maximum) {
                    throw fail(ids[index], FrameLimit.problem(frames: Int(raw[index + 1] - raw[index]), modality: name))
                }
            }
            if raw[count] != rows {
                throw fail(ids.last, "/\(name)/offsets end at row \(raw[count]) but /\(name)/features has \(rows) rows")
            }
            // After the per-utterance checks, so that an utterance declaring too many frames
            // is named rather than only the dataset that cannot hold them.
            try features.checkStorage(fileSize: fileSize)
            if dimension == 0, let index = (0..<count).first(where: { raw[$0 + 1] > raw[$0] }) {
                throw fail(ids[index], "dimension mismatch: \(raw[index + 1] - raw[index]) \(name) frames of dimension 0")
            }
            let group = try file.openGroup(name)
            if group.hasAttribute("dimension") {
                let declared = try group.attribute("dimension", as: Int64.self)
                guard declared == dimension else {
                    throw fail("dimension mismatch: /\(name) declares dimension \(declared), /\(name)/features has \(dimension) columns")
                }
            }
            var statistics: FeatureStatistics?
            if group.contains("train_mean") || group.contains("train_std") {
                let mean = try group.openDataset("train_mean").read(as: Double.self)
                let std = try group.openDataset("train_std").read(as: Double.self)
                guard mean.count == dimension, std.count == dimension else {
                    throw fail("dimension mismatch: /\(name)/train_mean and train_std have \(mean.count) and \(std.count) values for dimension \(dimension)")
                }
                guard mean.allSatisfy(\.isFinite), std.allSatisfy({ $0.isFinite && $0 >= 0 }) else {
                    throw fail("/\(name)/train_mean or train_std holds NaN, Inf or a negative std")
                }
                let frames = group.hasAttribute("train_frames") ? Int(try group.attribute("train_frames", as: Int64.self)) : 0
                statistics = FeatureStatistics(mean: mean, std: std, frameCount: frames)
            }
            return Stream(offsets: raw.map { Int($0) }, dimension: dimension, features: features, statistics: statistics)
        }
        let audio = try stream(.audio)
        let video = try stream(.video)
        for index in 0..<count
        where audio.offsets[index + 1] == audio.offsets[index] && video.offsets[index + 1] == video.offsets[index] {
            throw fail(ids[index], "has neither audio nor video frames")
        }

        self.path = path
        self.file = file
        self.task = task
        self.labelNames = labelNames
        self.labelRange = labelRange
        self.audioFramesPerSecond = audioFramesPerSecond
        self.videoFramesPerSecond = videoFramesPerSecond
        self.ids = ids
        self.speakers = speakers
        self.splits = splits
        self.labels = labels
        self.audio = audio
        self.video = video
    }

    /// Closes the datasets and the file under ``HDF5Lock`` (never concurrently with a read
    /// of another corpus on another thread).
    deinit {
        HDF5Lock.withLock {
            audio.features.close()
            video.features.close()
            file.close()
        }
    }

    // MARK: - Queries

    private func stream(_ modality: Modality) -> Stream {
        modality == .audio ? audio : video
    }

    /// The feature dimension of `modality` (d_a or d_v).
    public func dimension(_ modality: Modality) -> Int { stream(modality).dimension }

    /// Frames per second of `modality`.
    public func framesPerSecond(_ modality: Modality) -> Double {
        modality == .audio ? audioFramesPerSecond : videoFramesPerSecond
    }

    /// The number of frames of `utterance` (a row index 0..<N) in `modality`; 0 means the
    /// modality is missing for that utterance.
    public func frameCount(_ modality: Modality, utterance: Int) -> Int {
        let offsets = stream(modality).offsets
        return offsets[utterance + 1] - offsets[utterance]
    }

    /// The rows of `/audio/features` or `/video/features` holding `utterance`'s frames.
    public func rows(_ modality: Modality, utterance: Int) -> Range<Int> {
        let offsets = stream(modality).offsets
        return offsets[utterance]..<offsets[utterance + 1]
    }

    /// Whether `utterance` has frames of `modality`.
    public func has(_ modality: Modality, utterance: Int) -> Bool {
        frameCount(modality, utterance: utterance) > 0
    }

    /// The total number of frames of `modality` in the corpus.
    public func totalFrames(_ modality: Modality) -> Int { stream(modality).offsets.last ?? 0 }

    /// The row indices of the utterances in `split`, in corpus order.
    public func utterances(in split: Split) -> [Int] {
        splits.indices.filter { splits[$0] == split }
    }

    /// The K labels of `utterance`.
    public func labels(of utterance: Int) -> ArraySlice<Float> {
        labels[(utterance * labelCount)..<((utterance + 1) * labelCount)]
    }

    /// The train-split statistics stored in the file by ``CorpusWriter`` (`/audio/train_mean`,
    /// `/audio/train_std`, likewise for video), or `nil` if the file has none.
    public func storedStatistics(_ modality: Modality) -> FeatureStatistics? {
        stream(modality).statistics
    }

    /// The train-split statistics of `modality`: the stored ones if the file has them,
    /// otherwise computed by streaming over the train utterances (DESIGN §3). `nil` when no
    /// train utterance has the modality.
    public func featureStatistics(_ modality: Modality) throws -> FeatureStatistics? {
        if let stored = storedStatistics(modality) { return stored }
        return try computeFeatureStatistics(self, modality)
    }

    // MARK: - Reading frames

    /// Reads `utterance`'s frames of `modality` (frameCount × dimension floats, row-major)
    /// into the start of `destination`, by row range, without loading anything else.
    /// Checks that every value is finite and throws a ``CorpusError`` naming the file, the
    /// utterance id, the modality, the frame and the dimension otherwise. Thread-safe.
    public func readFrames(_ modality: Modality, utterance: Int, into destination: UnsafeMutableBufferPointer<Float>) throws {
        precondition(utterance >= 0 && utterance < utteranceCount, "utterance \(utterance) out of 0..<\(utteranceCount)")
        let stream = self.stream(modality)
        let rows = stream.offsets[utterance]..<stream.offsets[utterance + 1]
        let count = rows.count * stream.dimension
        guard destination.count >= count else {
            throw CorpusError(file: path, utterance: ids[utterance],
                              "\(modality.rawValue): destination holds \(destination.count) values, \(rows.count) frames × \(stream.dimension) need \(count)")
        }
        if count == 0 { return }
        let part = UnsafeMutableBufferPointer(rebasing: destination[0..<count])
        try HDF5Lock.withLock {
            do {
                try stream.features.readRows(rows, into: part)
            } catch let error as HDF5Error {
                throw CorpusError(file: path, utterance: ids[utterance], "\(modality.rawValue): \(error.object): \(error.problem)")
            }
        }
        if let bad = firstNonFinite(UnsafeBufferPointer(part)) {
            throw CorpusError(file: path, utterance: ids[utterance],
                              "\(modality.rawValue) feature \(part[bad]) at frame \(bad / stream.dimension), dimension \(bad % stream.dimension)")
        }
    }

    /// Reads `utterance`'s frames of `modality` into a new array (frameCount × dimension).
    public func frames(_ modality: Modality, utterance: Int) throws -> [Float] {
        let count = frameCount(modality, utterance: utterance) * dimension(modality)
        var values = [Float](repeating: 0, count: count)
        try values.withUnsafeMutableBufferPointer { try readFrames(modality, utterance: utterance, into: $0) }
        return values
    }
}

/// The index of the first NaN or ±Inf in `values`, or `nil` when all are finite.
/// (A quick all-finite pass first: the common case has no bad value.)
func firstNonFinite(_ values: UnsafeBufferPointer<Float>) -> Int? {
    var allFinite = true
    for value in values { allFinite = allFinite && value.isFinite }
    if allFinite { return nil }
    return values.firstIndex { !$0.isFinite }
}
