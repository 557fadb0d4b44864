import ArgumentParser
import Foundation
import HDF5
import VAVLCore
import VAVLData
import VAVLTraining

struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Predict new utterances from .npy features: both modalities → AV head, one → that modality's head.",
        discussion: """
        --audio and --video each take one .npy file (frames × dims, float32/float64, C order) or \
        one-array .npz, or a folder of them; files are matched by name (without the extension). \
        An utterance may have either \
        modality or both. Output: CSV (default, or a .csv path) or JSON (a .json path): class \
        probabilities (categorical) or attribute values on the training scale, and the head that answered.
        """)

    @OptionGroup var checkpoint: CheckpointOption
    @OptionGroup var precision: PrecisionOption
    @OptionGroup var frameLimit: FrameLimitOption
    @Option(help: "Audio features: a .npy/.npz file or a folder of them.") var audio: String?
    @Option(help: "Video features: a .npy/.npz file or a folder of them.") var video: String?
    @Option(help: "Write predictions here (.csv or .json); standard output otherwise.") var output: String?

    struct Prediction {
        var id: String
        var head: String
        var values: [String: Double]
        var predictedClass: String?
    }

    func run() throws {
        try endingWithOneLine {
            try frameLimit.apply()
            guard audio != nil || video != nil else { throw ValidationError("give --audio, --video or both") }
            let trained = try TrainedModel(checkpoint: checkpoint.resolved(), precision: precision.value)
            let config = trained.configuration
            let audioFiles = try files(audio), videoFiles = try files(video)
            var names = Set(audioFiles.keys).union(videoFiles.keys)
            if audioFiles.count == 1 && videoFiles.count == 1 && !isFolder(audio) && !isFolder(video) {
                names = [audioFiles.keys.first!]  // two single files are one utterance
            }
            let context = RunContext(store: trained.model.store)
            let labelNames = config.labelNames.isEmpty ? (0..<config.outputDimension).map { "\($0)" } : config.labelNames
            var predictions: [Prediction] = []
            for name in names.sorted() {
                let single = audioFiles.count == 1 && videoFiles.count == 1 && names.count == 1
                let audioPath = single ? audioFiles.values.first : audioFiles[name]
                let videoPath = single ? videoFiles.values.first : videoFiles[name]
                let a = try audioPath.map { try features($0, name: name, modality: .audio, dimension: config.audioDimension, trained) }
                let v = try videoPath.map { try features($0, name: name, modality: .video, dimension: config.videoDimension, trained) }
                let output = trained.model.predict(audio: a.map { ($0, Segments(lengths: [$0.rows])) },
                                                   video: v.map { ($0, Segments(lengths: [$0.rows])) }, context)
                let head = a != nil && v != nil ? "audio_visual" : (a != nil ? "audio" : "video")
                var values = output.array
                let fused = head == "audio_visual" && trained.model.audioVisualHead == nil
                if config.task == .categorical && !fused {
                    // Class probabilities with the model's own softmax.
                    let logits = values
                    logits.withUnsafeBufferPointer { x in
                        values.withUnsafeMutableBufferPointer { y in
                            Elementwise.softmax(y.baseAddress!, x.baseAddress!, count: x.count, scale: 1)
                        }
                    }
                }
                var prediction = Prediction(id: name, head: head,
                                            values: Dictionary(uniqueKeysWithValues: zip(labelNames, values.map(Double.init))))
                if config.task == .categorical, let best = values.indices.max(by: { values[$0] < values[$1] }) {
                    prediction.predictedClass = labelNames[best]
                }
                predictions.append(prediction)
            }
            try write(predictions, labelNames: labelNames)
        }
    }

    func isFolder(_ path: String?) -> Bool {
        guard let path else { return false }
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    /// name → path of every .npy or .npz under `path` (a file or a folder).
    func files(_ path: String?) throws -> [String: String] {
        guard let path else { return [:] }
        guard FileManager.default.fileExists(atPath: path) else { throw CorpusError(file: path, "no such file or folder") }
        if isFolder(path) {
            let entries = try FileManager.default.contentsOfDirectory(atPath: path).filter(NumpyFile.isFeatureFile)
            guard !entries.isEmpty else { throw CorpusError(file: path, "the folder holds no .npy or .npz files") }
            var byName: [String: String] = [:]
            for entry in entries.sorted() {
                let name = (entry as NSString).deletingPathExtension
                if byName[name] != nil { throw CorpusError(file: path, utterance: name, "both \(name).npy and \(name).npz exist; keep one") }
                byName[name] = (path as NSString).appendingPathComponent(entry)
            }
            return byName
        }
        return [((path as NSString).lastPathComponent as NSString).deletingPathExtension: path]
    }

    func features(_ path: String, name: String, modality: VAVLData.Modality, dimension: Int, _ trained: TrainedModel) throws -> Matrix {
        try FrameLimit.check(try NumpyFile.readHeader(path, utterance: name).shape[0], modality: modality.rawValue,
                             file: path, utterance: name)
        let array = try NumpyFile.read(path, utterance: name)
        guard array.columns == dimension else {
            throw CorpusError(file: path, utterance: name, "\(modality.rawValue) features have \(array.columns) dimensions, the model expects \(dimension)")
        }
        guard array.rows > 0 else { throw CorpusError(file: path, utterance: name, "no frames") }
        if let bad = array.values.firstIndex(where: { !$0.isFinite }) {
            throw CorpusError(file: path, utterance: name, "\(modality.rawValue) feature \(array.values[bad]) at frame \(bad / dimension)")
        }
        let matrix = Matrix(rows: array.rows, columns: array.columns, values: array.values)
        trained.normalization.apply(modality, UnsafeMutableBufferPointer(start: matrix.data, count: matrix.count))
        return matrix
    }

    func write(_ predictions: [Prediction], labelNames: [String]) throws {
        let text: String
        if let output, output.hasSuffix(".json") {
            text = try Self.json(predictions, labelNames: labelNames)
        } else {
            var lines = [(["id", "head"] + labelNames + (predictions.first?.predictedClass != nil ? ["predicted"] : []))
                .map(csvField).joined(separator: ",")]
            for prediction in predictions {
                var fields = [prediction.id, prediction.head] + labelNames.map { String(format: "%.6f", prediction.values[$0] ?? 0) }
                if let predicted = prediction.predictedClass { fields.append(predicted) }
                lines.append(fields.map(csvField).joined(separator: ","))
            }
            text = lines.joined(separator: "\n") + "\n"
        }
        if let output {
            try SafeFiles.replace(output, with: Data(text.utf8))
        } else {
            print(text, terminator: "")
        }
    }
}

extension PredictCommand {
    /// The predictions as a JSON array, one object per utterance with snake_case keys and its
    /// `values` in the model's label order (a JSON object keeps the order it is written in;
    /// the encoders' sorted keys would put the classes in alphabetical order instead).
    static func json(_ predictions: [Prediction], labelNames: [String]) throws -> String {
        func quoted(_ text: String) throws -> String { String(decoding: try JSONEncoder().encode(text), as: UTF8.self) }
        var objects: [String] = []
        for prediction in predictions {
            let values = try labelNames.map { "\(try quoted($0)): \(prediction.values[$0] ?? 0)" }
            var fields = ["\"id\": \(try quoted(prediction.id))", "\"head\": \(try quoted(prediction.head))",
                          "\"values\": {" + values.joined(separator: ", ") + "}"]
            if let predicted = prediction.predictedClass { fields.append("\"predicted_class\": \(try quoted(predicted))") }
            objects.append("  {" + fields.joined(separator: ", ") + "}")
        }
        return "[\n" + objects.joined(separator: ",\n") + "\n]\n"
    }
}

/// A CSV field per RFC 4180 (quoted when it holds a comma, quote or line break; quotes
/// doubled), and a text starting with `=`, `+`, `-` or `@` prefixed with `'` so that a
/// spreadsheet shows it instead of evaluating it as a formula. Numbers pass unchanged.
func csvField(_ text: String) -> String {
    var field = text
    if let first = field.first, "=+-@".contains(first), Double(field) == nil { field = "'" + field }
    guard field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return field }
    return "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}
