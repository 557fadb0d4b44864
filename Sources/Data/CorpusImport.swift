import Foundation

/// What `vavl corpus import` reads and writes.
public struct ImportOptions: Sendable {
    /// The label CSV in the authors' layout (see ``LabelTable``).
    public var labelFile: String
    /// Folders of `<id>.npy` files (frames × dims, float32 or float64, C order) or `<id>.npz`
    /// archives of one such array, where `id` is `FileName` without `.wav`. A missing file
    /// means that modality is missing.
    public var audioDirectory: String
    public var videoDirectory: String
    public var task: PredictionTask
    public var output: String
    /// Label columns, in order (default: every column but FileName, SpkrID, Gender, Split_Set).
    public var labelColumns: [String]?
    /// The rating scale; required for dimensional corpora, −3…3 by default for sentiment.
    public var labelRange: ClosedRange<Double>?
    /// Expected feature dimensions (default: those of the first file found).
    public var audioDimension: Int?
    public var videoDimension: Int?
    public var audioFramesPerSecond: Double = 50
    public var videoFramesPerSecond: Double = 30

    public init(labelFile: String, audioDirectory: String, videoDirectory: String, task: PredictionTask, output: String,
                labelColumns: [String]? = nil, labelRange: ClosedRange<Double>? = nil) {
        self.labelFile = labelFile
        self.audioDirectory = audioDirectory
        self.videoDirectory = videoDirectory
        self.task = task
        self.output = output
        self.labelColumns = labelColumns
        self.labelRange = labelRange
    }
}

/// What an import produced.
public struct ImportReport: Codable, Equatable, Sendable {
    public var utterances: Int
    public var audioAndVideo: Int
    public var audioOnly: Int
    public var videoOnly: Int
    public var audioDimension: Int
    public var videoDimension: Int
    public var audioFrames: Int
    public var videoFrames: Int
    /// `.npy` files in the feature folders that no CSV row names (ignored).
    public var unusedFiles: Int
    public var bytes: Int
}

/// Imports a label CSV and per-utterance `.npy` feature files into a corpus at
/// `options.output` (DESIGN §5).
///
/// Everything is checked before the output exists: the CSV (columns, duplicate names,
/// unknown splits, labels that are not finite numbers or lie outside the range), every
/// feature file's header (readable, `<f4`/`<f8`, C order, 2-D, at least one frame, the same
/// dimension as the others) and that each utterance has at least one file. The frames are
/// then streamed into a ``CorpusWriter``, each file checked for NaN/Inf. Any problem throws
/// a ``CorpusError`` naming the file and the utterance, and leaves no output file (nor a
/// temporary one). `progress(done, total)` is called after each utterance.
public func importCorpus(_ options: ImportOptions, progress: ((Int, Int) -> Void)? = nil) throws -> ImportReport {
    let table = try LabelTable.read(options.labelFile)
    var range = options.labelRange
    if range == nil {
        switch options.task {
        case .sentiment: range = -3...3
        case .dimensional:
            throw CorpusError(file: options.labelFile, "a dimensional corpus needs --label-range LO,HI (the rating scale, e.g. 1,5)")
        case .categorical: break
        }
    }
    let parsed = try table.utterances(labelColumns: options.labelColumns, task: options.task, range: range)
    switch options.task {
    case .sentiment where parsed.labelNames.count != 1:
        throw CorpusError(file: options.labelFile, "a sentiment corpus has one label column, got \(parsed.labelNames.joined(separator: ", ")) (choose it with --label-columns)")
    case .categorical where parsed.labelNames.count < 2:
        throw CorpusError(file: options.labelFile, "a categorical corpus needs a score column per class (at least 2), got \(parsed.labelNames.joined(separator: ", "))")
    default: break
    }
    if options.task == .categorical {
        for (utterance, line) in zip(parsed.utterances, parsed.lineNumbers) where utterance.labels.allSatisfy({ $0 == 0 }) {
            throw CorpusError(file: options.labelFile, utterance: utterance.id, "line \(line): every class score is 0")
        }
    }
    if parsed.utterances.isEmpty { throw CorpusError(file: options.labelFile, "the label file has no utterances") }

    // Pass 1: which files exist, their headers and dimensions.
    let directories = [options.audioDirectory, options.videoDirectory]
    for directory in directories {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw CorpusError(file: directory, "no such feature folder")
        }
    }
    var dimensions: [Int?] = [options.audioDimension, options.videoDimension]
    var dimensionSource: [String] = ["--audio-dim", "--video-dim"]
    var files: [[String?]] = [[], []]
    for utterance in parsed.utterances {
        var found = false
        for (index, directory) in directories.enumerated() {
            guard let path = try NumpyFile.featureFile(in: directory, id: utterance.id) else { files[index].append(nil); continue }
            let header = try NumpyFile.readHeader(path, utterance: utterance.id)
            guard header.shape[0] > 0 else {
                throw CorpusError(file: path, utterance: utterance.id, "has no frames (shape \(header.shape)); delete the file if the modality is missing")
            }
            try FrameLimit.check(header.shape[0], modality: index == 0 ? "audio" : "video", file: path, utterance: utterance.id)
            if let expected = dimensions[index] {
                guard header.shape[1] == expected else {
                    throw CorpusError(file: path, utterance: utterance.id,
                                      "wrong dimension: \(header.shape[0]) × \(header.shape[1]), expected \(expected) columns (as in \(dimensionSource[index]))")
                }
            } else {
                dimensions[index] = header.shape[1]
                dimensionSource[index] = path
            }
            files[index].append(path)
            found = true
        }
        if !found {
            throw CorpusError(file: options.labelFile, utterance: utterance.id,
                              "no features at all: neither \(options.audioDirectory)/\(utterance.id).npy (or .npz) nor \(options.videoDirectory)/\(utterance.id).npy (or .npz) exists")
        }
    }
    // A feature folder that matched no utterance at all is a mistake (a wrong path, or files
    // named unlike the label file's FileName column), not a corpus without that modality.
    for (index, directory) in directories.enumerated() where files[index].allSatisfy({ $0 == nil }) {
        let features = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter(NumpyFile.isFeatureFile)
        throw CorpusError(file: directory, features.isEmpty
            ? "no .npy or .npz feature files in this folder"
            : "none of its \(features.count) feature files matches an utterance of \(options.labelFile) (e.g. \(features.sorted()[0]); expected names like \(parsed.utterances[0].id).npy)")
    }
    let known = Set(parsed.utterances.map(\.id))
    let unused = directories.reduce(0) { total, directory in
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return total + names.filter { NumpyFile.isFeatureFile($0) && !known.contains(($0 as NSString).deletingPathExtension) }.count
    }

    // Pass 2: stream the frames into the writer.
    let description = CorpusDescription(task: options.task, labelNames: parsed.labelNames, labelRange: range,
                                        audioDimension: dimensions[0] ?? 0, videoDimension: dimensions[1] ?? 0,
                                        audioFramesPerSecond: options.audioFramesPerSecond,
                                        videoFramesPerSecond: options.videoFramesPerSecond)
    let writer = try CorpusWriter(path: options.output, description: description)
    defer { writer.cancel() }  // no-op once finished
    var report = ImportReport(utterances: 0, audioAndVideo: 0, audioOnly: 0, videoOnly: 0,
                              audioDimension: description.audioDimension, videoDimension: description.videoDimension,
                              audioFrames: 0, videoFrames: 0, unusedFiles: unused, bytes: 0)
    for (index, utterance) in parsed.utterances.enumerated() {
        let matrices = try [files[0][index], files[1][index]].map { path -> [Float] in
            guard let path else { return [] }
            let matrix = try NumpyFile.read(path, utterance: utterance.id)
            if let bad = matrix.values.withUnsafeBufferPointer({ firstNonFinite($0) }) {
                throw CorpusError(file: path, utterance: utterance.id,
                                  "value \(matrix.values[bad]) at frame \(bad / matrix.columns), dimension \(bad % matrix.columns)")
            }
            return matrix.values
        }
        try writer.append(id: utterance.id, speaker: utterance.speaker, split: utterance.split,
                          labels: utterance.labels, audio: matrices[0], video: matrices[1])
        report.utterances += 1
        let audioFrames = description.audioDimension == 0 ? 0 : matrices[0].count / description.audioDimension
        let videoFrames = description.videoDimension == 0 ? 0 : matrices[1].count / description.videoDimension
        report.audioFrames += audioFrames
        report.videoFrames += videoFrames
        switch (audioFrames > 0, videoFrames > 0) {
        case (true, true): report.audioAndVideo += 1
        case (true, false): report.audioOnly += 1
        default: report.videoOnly += 1
        }
        progress?(index + 1, parsed.utterances.count)
    }
    report.bytes = try writer.finish()
    return report
}
