import ArgumentParser
import Foundation
import VAVLExperiments
import VAVLTraining

/// `vavl report`: one Markdown report from the experiments' JSON results.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Turn experiment results (JSON files, or folders searched recursively) into one Markdown report.",
        discussion: """
        Sections: robustness (tables and links to the SVG plots), shared-embedding distance, \
        ablations (one table per head), repeated runs (mean ± std) and t-test comparisons. \
        Links are relative to the report's folder.
        """)

    @Option(parsing: .upToNextOption, help: "Result files or folders (e.g. the --out folders of `vavl experiment …`).")
    var results: [String]
    @Option(help: "The Markdown file to write.") var output: String

    func run() throws {
        try endingWithOneLine {
            guard !results.isEmpty else { throw ValidationError("give at least one --results file or folder") }
            let files = try ExperimentReport.collect(results)
            let text = try ExperimentReport.render(files: files, output: output)
            let folder = (output as NSString).deletingLastPathComponent
            if !folder.isEmpty { try ExperimentFile.makeDirectory(folder) }
            try ExperimentFile.write(text: text, to: output)
            print("wrote \(output) from \(files.count) result file(s)")
        }
    }
}
