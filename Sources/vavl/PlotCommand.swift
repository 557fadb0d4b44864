import ArgumentParser
import Foundation
import VAVLExperiments

/// `vavl plot`: a run's training and development curves as SVG, from its metrics.jsonl.
struct PlotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plot",
        abstract: "Draw a run's training and development curves (SVG) from its metrics.jsonl.",
        discussion: """
        Writes PREFIX-loss.svg (training loss per phase, solid; development loss per head, \
        dashed; by epoch) and PREFIX-dev.svg (the development F1-macro, mean CCC or MAE per \
        head, by epoch). PREFIX defaults to RUN/curves.
        """)

    @Argument(help: "A run folder (its metrics.jsonl is read) or a metrics.jsonl file.") var path: String
    @Option(help: "Output path prefix (default: RUN/curves).") var output: String?

    func run() throws {
        try endingWithOneLine {
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
                throw ValidationError("\(path): no such run folder or metrics file")
            }
            let metrics = isFolder.boolValue ? (path as NSString).appendingPathComponent("metrics.jsonl") : path
            let folder = isFolder.boolValue ? path : (path as NSString).deletingLastPathComponent
            let prefix = output ?? (folder.isEmpty ? "curves" : (folder as NSString).appendingPathComponent("curves"))
            let curves = try TrainingCurves(metricsFile: metrics)
            let name = ((isFolder.boolValue ? path : folder) as NSString).lastPathComponent
            try curves.lossPlot(title: "\(name): loss").write(to: prefix + "-loss.svg")
            print("wrote \(prefix)-loss.svg")
            if let plot = curves.metricPlot(title: "\(name): development \(curves.metric ?? "")") {
                try plot.write(to: prefix + "-dev.svg")
                print("wrote \(prefix)-dev.svg")
            } else {
                print("no development scores in \(metrics): no -dev.svg")
            }
        }
    }
}
