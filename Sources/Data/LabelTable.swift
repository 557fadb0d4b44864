import Foundation

/// A label file in the layout of the authors' release: a header row, then one row per
/// utterance with `FileName` (e.g. `1026_IEO_ANG_HI.wav`), label columns, `SpkrID`, `Gender`
/// and `Split_Set` (`Train`, `Development` or `Test`). Comma-separated; fields may be quoted
/// with `"` (a doubled `""` inside quotes is a quote); CRLF line ends are accepted.
public struct LabelTable: Sendable {
    /// The file the table was read from (named in every error).
    public var path: String
    /// Header names, in file order.
    public var columns: [String]
    /// Data rows (each with `columns.count` fields) and their 1-based line numbers.
    public var rows: [[String]]
    public var lineNumbers: [Int]

    /// The columns that are not labels: the utterance name, speaker, gender and split.
    public static let metadataColumns = ["FileName", "SpkrID", "Gender", "Split_Set"]

    /// Reads and parses `path`; a row whose field count differs from the header's is an
    /// error naming the line.
    public static func read(_ path: String) throws -> LabelTable {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CorpusError(file: path, "cannot read the label file")
        }
        return try parse(String(decoding: data, as: UTF8.self), path: path)
    }

    /// Parses CSV `text`, naming `path` in errors.
    public static func parse(_ text: String, path: String) throws -> LabelTable {
        var records: [(line: Int, fields: [String])] = []
        var fields: [String] = []
        var field = ""
        var inQuotes = false
        var line = 1
        var recordLine = 1
        var iterator = text.unicodeScalars.makeIterator()
        var pending: Unicode.Scalar? = nil
        func endRecord() {
            fields.append(field)
            field = ""
            if !(fields.count == 1 && fields[0].isEmpty) { records.append((recordLine, fields)) }
            fields = []
        }
        while let scalar = pending ?? iterator.next() {
            pending = nil
            if inQuotes {
                if scalar == "\"" {
                    let next = iterator.next()
                    if next == "\"" { field.unicodeScalars.append("\"") } else { inQuotes = false; pending = next }
                } else {
                    if scalar == "\n" { line += 1 }
                    field.unicodeScalars.append(scalar)
                }
                continue
            }
            switch scalar {
            case "\"" where field.isEmpty: inQuotes = true
            case ",": fields.append(field); field = ""
            case "\r": break
            case "\n": endRecord(); line += 1; recordLine = line
            default: field.unicodeScalars.append(scalar)
            }
        }
        if inQuotes { throw CorpusError(file: path, "line \(recordLine): unterminated quoted field") }
        if !field.isEmpty || !fields.isEmpty { endRecord() }
        guard let header = records.first else { throw CorpusError(file: path, "the label file is empty") }
        let columns = header.fields.map { $0.trimmingCharacters(in: .whitespaces) }
            .enumerated().map { $0.offset == 0 ? $0.element.replacingOccurrences(of: "\u{FEFF}", with: "") : $0.element }
        if let duplicate = columns.first(where: { name in columns.filter { $0 == name }.count > 1 }) {
            throw CorpusError(file: path, "the header names column '\(duplicate)' twice")
        }
        var rows: [[String]] = []
        var lineNumbers: [Int] = []
        for record in records.dropFirst() {
            guard record.fields.count == columns.count else {
                let name = record.fields.first.map { " ('\($0)')" } ?? ""
                throw CorpusError(file: path, "line \(record.line)\(name): \(record.fields.count) fields, the header has \(columns.count)")
            }
            rows.append(record.fields)
            lineNumbers.append(record.line)
        }
        return LabelTable(path: path, columns: columns, rows: rows, lineNumbers: lineNumbers)
    }

    /// The index of column `name`, or an error naming the file.
    public func column(_ name: String) throws -> Int {
        guard let index = columns.firstIndex(of: name) else {
            throw CorpusError(file: path, "no column '\(name)' (the header has \(columns.joined(separator: ", ")))")
        }
        return index
    }

    /// The label columns: every column except ``metadataColumns``, in file order.
    public var defaultLabelColumns: [String] {
        columns.filter { !LabelTable.metadataColumns.contains($0) }
    }

    /// An utterance id from a `FileName` value: the name without a trailing `.wav`
    /// (features are looked up as `<id>.npy`).
    public static func utteranceID(fileName: String) -> String {
        let trimmed = fileName.trimmingCharacters(in: .whitespaces)
        return trimmed.lowercased().hasSuffix(".wav") ? String(trimmed.dropLast(4)) : trimmed
    }
}

/// One utterance's metadata, as the label files and the synthetic presets give it.
public struct UtteranceMetadata: Equatable, Sendable {
    public var id: String
    public var speaker: String
    public var split: Split
    /// K labels on the raw scale.
    public var labels: [Float]

    public init(id: String, speaker: String, split: Split, labels: [Float]) {
        self.id = id
        self.speaker = speaker
        self.split = split
        self.labels = labels
    }
}

/// The utterances of a label table with its labels parsed and checked.
public struct LabeledUtterances: Sendable {
    public var labelNames: [String]
    public var utterances: [UtteranceMetadata]
    /// The 1-based line of each utterance in the label file.
    public var lineNumbers: [Int]
}

extension LabelTable {
    /// Parses the utterances: ids from `FileName` (without `.wav`), speakers from `SpkrID`,
    /// splits from `Split_Set`, labels from `labelColumns` (default ``defaultLabelColumns``).
    /// Errors name the file, the line and the utterance: an empty or duplicate name, an
    /// unknown split, a label that is not a finite number, a label outside `range`, or a
    /// negative class score for `task` categorical.
    public func utterances(labelColumns: [String]? = nil, task: PredictionTask? = nil,
                           range: ClosedRange<Double>? = nil) throws -> LabeledUtterances {
        let names = labelColumns ?? defaultLabelColumns
        guard !names.isEmpty else { throw CorpusError(file: path, "no label columns (the header has \(columns.joined(separator: ", ")))") }
        let labelIndices = try names.map { try column($0) }
        let nameIndex = try column("FileName")
        let speakerIndex = try column("SpkrID")
        let splitIndex = try column("Split_Set")
        var seen: [String: Int] = [:]
        var result: [UtteranceMetadata] = []
        result.reserveCapacity(rows.count)
        for (row, line) in zip(rows, lineNumbers) {
            let id = LabelTable.utteranceID(fileName: row[nameIndex])
            func fail(_ problem: String) -> CorpusError { CorpusError(file: path, utterance: id, "line \(line): \(problem)") }
            guard !id.isEmpty else { throw CorpusError(file: path, "line \(line): empty FileName") }
            // An id names feature files inside the given folders: a plain file name only, so a
            // label file cannot make the import read from anywhere else.
            guard !id.contains("/"), !id.contains("\\"), id != ".", id != "..", !id.contains("\0"),
                  !id.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                throw fail("FileName must be a plain file name (no path separators, '..' or control characters)")
            }
            if let previous = seen.updateValue(line, forKey: id) {
                throw fail("duplicate FileName (first on line \(previous))")
            }
            guard let split = Split(labelFileName: row[splitIndex]) else {
                throw fail("unknown Split_Set '\(row[splitIndex])' (expected Train, Development or Test)")
            }
            let labels = try zip(names, labelIndices).map { name, index -> Float in
                let text = row[index].trimmingCharacters(in: .whitespaces)
                guard let value = Double(text), value.isFinite else {
                    throw fail("label '\(name)' is '\(text)', not a finite number")
                }
                if let range, !range.contains(value) {
                    throw fail("label '\(name)' = \(text) is outside the label range \(range.lowerBound)…\(range.upperBound)")
                }
                if task == .categorical && value < 0 {
                    throw fail("class score '\(name)' = \(text) is negative")
                }
                return Float(value)
            }
            result.append(UtteranceMetadata(id: id, speaker: row[speakerIndex].trimmingCharacters(in: .whitespaces),
                                             split: split, labels: labels))
        }
        return LabeledUtterances(labelNames: names, utterances: result, lineNumbers: lineNumbers)
    }
}

/// The label files of the authors' release (partition 1) that ship inside this module as
/// resources, so a fresh clone can build synthetic corpora on real metadata.
public enum BundledLabelFile: String, CaseIterable, Sendable {
    /// CREMA-D: 5,820 utterances, six class distributions (angry, sad, disgust, fear, neutral, happy).
    case cremaD = "cremad_labels_partition1"
    /// MSP-IMPROV: 8,385 utterances, EmoAct, EmoVal, EmoDom on 1–5.
    case mspImprov = "mspimprov_labels_partition1"

    /// The path of the CSV inside the module's resource bundle.
    public var path: String {
        get throws {
            if let url = Bundle.module.url(forResource: rawValue, withExtension: "csv", subdirectory: "Resources") {
                return url.path
            }
            throw CorpusError(file: "\(rawValue).csv", "the bundled label file is missing from the VAVLData resources")
        }
    }

    public func read() throws -> LabelTable {
        try LabelTable.read(try path)
    }
}
