import VAVLTraining
import Foundation
import HDF5
import VAVLCore

/// Which metrics the experiment tables show for a task, which one is the headline (the
/// y axis of the robustness plots), and which way is better.
public enum TaskMetrics {
    /// Table columns: F1-macro, F1-micro, accuracy (categorical); CCC per attribute and
    /// their mean (dimensional); MAE (sentiment).
    public static func columns(task: PredictionTask, labelNames: [String]) -> [String] {
        switch task {
        case .categorical: return ["f1_macro", "f1_micro", "accuracy"]
        case .dimensional: return labelNames.map { "ccc_\($0)" } + ["ccc_mean"]
        case .sentiment: return ["mae"]
        }
    }

    /// The headline metric: F1-macro, mean CCC or MAE.
    public static func primary(_ task: PredictionTask) -> String {
        switch task {
        case .categorical: return "f1_macro"
        case .dimensional: return "ccc_mean"
        case .sentiment: return "mae"
        }
    }

    /// Losses and errors are better low; F1, accuracy and CCC high.
    public static func higherIsBetter(_ metric: String) -> Bool {
        !(metric == "mae" || metric == "loss")
    }

    /// A readable name for axes and headers.
    public static func label(_ metric: String) -> String {
        switch metric {
        case "f1_macro": return "F1-macro"
        case "f1_micro": return "F1-micro"
        case "accuracy": return "accuracy"
        case "ccc_mean": return "mean CCC"
        case "mae": return "MAE"
        case "loss": return "loss"
        default: return metric.hasPrefix("ccc_") ? "CCC " + metric.dropFirst(4) : metric
        }
    }
}

/// The readable name of an evaluation head.
extension EvaluationHead {
    public var title: String {
        switch self {
        case .audioVisual: return "audio-visual"
        case .audio: return "acoustic (audio-only)"
        case .video: return "visual (video-only)"
        }
    }
}

/// Reading and writing the experiments' JSON files. Every file carries a `kind` so that
/// `vavl report` can tell them apart: `robustness`, `embedding`, `ablations`, `repeat`,
/// `comparison` (and `run` for the per-run files inside an ablation or repeat folder).
public enum ExperimentFile {
    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return encoder
    }

    static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return decoder
    }

    public static func encode<T: Encodable>(_ value: T) throws -> Data {
        try encoder().encode(value) + Data("\n".utf8)
    }

    /// Writes `value` as JSON to `path` atomically.
    public static func write<T: Encodable>(_ value: T, to path: String) throws {
        try SafeFiles.replace(path, with: encode(value))
    }

    /// Writes text to `path` atomically.
    public static func write(text: String, to path: String) throws {
        try SafeFiles.replace(path, with: Data(text.utf8))
    }

    public static func read<T: Decodable>(_ type: T.Type, from path: String) throws -> T {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ExperimentError("\(path): cannot read the file")
        }
        do {
            return try decoder().decode(type, from: data)
        } catch {
            throw ExperimentError("\(path): not a \(T.self) result file (\(error))")
        }
    }

    /// The `kind` of a result file, or nil when it is not one of ours.
    public static func kind(of path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        return object["kind"] as? String
    }

    /// Creates `path` (and parents) if needed.
    public static func makeDirectory(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw ExperimentError("cannot create the folder \(path): \(error.localizedDescription)")
        }
    }
}

/// An experiment that cannot run as asked, with a message saying why.
public struct ExperimentError: Error, CustomStringConvertible, LocalizedError {
    public var description: String
    public init(_ description: String) { self.description = description }
    public var errorDescription: String? { description }
}

/// A fixed-width text table.
struct TextTable {
    var header: [String]
    var rows: [[String]]

    func render() -> String {
        var widths = header.map(\.count)
        for row in rows { for (index, cell) in row.enumerated() where index < widths.count { widths[index] = max(widths[index], cell.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                index == 0 ? cell.padding(toLength: widths[0], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[index] - cell.count) + cell
            }.joined(separator: "  ")
        }
        let head = line(header)
        return ([head, String(repeating: "-", count: head.count)] + rows.map(line)).joined(separator: "\n")
    }

    /// The same table in GitHub Markdown.
    func markdown() -> String {
        let head = "| " + header.joined(separator: " | ") + " |"
        let rule = "|" + header.enumerated().map { $0.offset == 0 ? " --- |" : " ---: |" }.joined()
        return ([head, rule] + rows.map { "| " + $0.joined(separator: " | ") + " |" }).joined(separator: "\n")
    }
}

func formatMetric(_ value: Double?) -> String {
    guard let value else { return "–" }
    return value.isFinite ? String(format: "%.4f", value) : "–"
}
