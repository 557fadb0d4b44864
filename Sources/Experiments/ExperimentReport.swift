import VAVLTraining
import Foundation

/// `vavl report`: one Markdown document from the JSON results of the experiments —
/// robustness sweeps (tables and links to their SVG plots), shared-embedding analyses,
/// ablation tables per head, repeated runs (mean ± std) and t-test comparisons.
public enum ExperimentReport {
    /// The kinds a report shows, in the order of its sections.
    public static let kinds = ["robustness", "embedding", "ablations", "repeat", "comparison"]

    /// Result files under `inputs` (files, or folders searched recursively), keeping those
    /// whose `kind` is one of ``kinds``; in input order, folders sorted by path. A file named
    /// on the command line that is not a result is an error; inside folders such files
    /// (per-run files, metrics, configs) are skipped.
    public static func collect(_ inputs: [String]) throws -> [String] {
        var files: [String] = []
        for input in inputs {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: input, isDirectory: &isDirectory) else {
                throw ExperimentError("\(input): no such file or folder")
            }
            if isDirectory.boolValue {
                guard let enumerator = FileManager.default.enumerator(atPath: input) else { continue }
                var found: [String] = []
                while let relative = enumerator.nextObject() as? String {
                    guard relative.hasSuffix(".json") else { continue }
                    let path = (input as NSString).appendingPathComponent(relative)
                    if let kind = ExperimentFile.kind(of: path), kinds.contains(kind) { found.append(path) }
                }
                files += found.sorted()
            } else {
                guard let kind = ExperimentFile.kind(of: input), kinds.contains(kind) else {
                    throw ExperimentError("\(input): not an experiment result (expected a JSON file of kind \(kinds.joined(separator: ", ")))")
                }
                files.append(input)
            }
        }
        var seen = Set<String>()
        return files.filter { seen.insert(($0 as NSString).standardizingPath).inserted }
    }

    /// `target` relative to the folder `base` (both made absolute), for Markdown links.
    static func relativePath(_ target: String, from base: String) -> String {
        func components(_ path: String) -> [String] {
            let absolute = path.hasPrefix("/") ? path : (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(path)
            return (absolute as NSString).standardizingPath.split(separator: "/").map(String.init)
        }
        let t = components(target), b = components(base)
        var common = 0
        while common < min(t.count, b.count) && t[common] == b[common] { common += 1 }
        let parts = Array(repeating: "..", count: b.count - common) + t[common...]
        return parts.isEmpty ? "." : parts.joined(separator: "/")
    }

    /// The Markdown report of `files`, with links relative to the folder of `output`.
    public static func render(files: [String], output: String) throws -> String {
        let reportFolder = (output as NSString).deletingLastPathComponent.isEmpty ? "." : (output as NSString).deletingLastPathComponent
        var sections: [String: [String]] = [:]
        for file in files {
            let folder = (file as NSString).deletingLastPathComponent
            let source = "Source: `\(relativePath(file, from: reportFolder))`"
            switch ExperimentFile.kind(of: file) {
            case "robustness":
                let sweep = try ExperimentFile.read(RobustnessSweep.self, from: file)
                var text = "### Missing \(sweep.maskedModality) frames\n\n" + sweep.markdown
                if let plot = sweep.plot {
                    let link = relativePath((folder as NSString).appendingPathComponent(plot), from: reportFolder)
                    text += "\n![\(TaskMetrics.label(sweep.metric)) against % of masked \(sweep.maskedModality) frames](\(link))\n\n[plot](\(link))\n"
                }
                sections["robustness", default: []].append(text + "\n" + source + "\n")
            case "embedding":
                let analysis = try ExperimentFile.read(EmbeddingAnalysis.self, from: file)
                sections["embedding", default: []].append("### `\(analysis.checkpoint)`\n\n" + analysis.markdown + "\n" + source + "\n")
            case "ablations":
                let study = try ExperimentFile.read(AblationStudy.self, from: file)
                sections["ablations", default: []].append("### `\(study.corpus)`\n\n" + study.markdown + "\n" + source + "\n")
            case "repeat":
                let runs = try ExperimentFile.read(RepeatedRuns.self, from: file)
                sections["repeat", default: []].append("### \(runs.system.rawValue) over \(runs.runs.count) \(runs.pairing)\n\n" + runs.markdown + "\n" + source + "\n")
            case "comparison":
                let comparison = try ExperimentFile.read(Comparison.self, from: file)
                sections["comparison", default: []].append("### \(comparison.a.system.rawValue) vs \(comparison.b.system.rawValue)\n\n" + comparison.markdown + "\n" + source + "\n")
            default:
                continue
            }
        }
        let titles = ["robustness": "Robustness to missing frames (paper Figs. 2–3)",
                      "embedding": "Shared-embedding analysis (paper Fig. 4)",
                      "ablations": "Ablations (paper Table III)",
                      "repeat": "Repeated runs (paper Tables I–III)",
                      "comparison": "Significance (two-tailed t-test, p < 0.05)"]
        var text = "# VAVL experiments\n\n"
        text += "Generated by `vavl report` from \(files.count) result file(s).\n"
        guard !files.isEmpty else { return text + "\nNo experiment results were found.\n" }
        for kind in kinds {
            guard let entries = sections[kind] else { continue }
            text += "\n## \(titles[kind]!)\n\n" + entries.joined(separator: "\n")
        }
        return text
    }
}
