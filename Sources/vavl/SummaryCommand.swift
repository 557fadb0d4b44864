import ArgumentParser
import VAVLCore

/// Parameter counts per component for any config, to compare with the paper (§III-E).
struct SummaryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "summary",
        abstract: "Print the parameter count of each component (θ_a, θ_v, θ_s, heads, reconstruction) for a config.")

    @OptionGroup var modelOptions: ModelShapeOptions
    @Option(help: "Audio feature dimension d_a.") var audioDimension = 1024
    @Option(help: "Video feature dimension d_v.") var videoDimension = 1408
    @Option(help: "Outputs (6 classes for CREMA-D, 3 attributes for MSP-IMPROV, 1 for sentiment).") var outputs = 6
    @Flag(help: "Print the configuration table instead: every key of --config files and checkpoints, its JSON type, default, valid range, resume rule and meaning.")
    var keys = false

    func run() throws {
        if keys {
            print(configurationTable())
            return
        }
        var configuration = try modelOptions.resolve()
        configuration.audioDimension = audioDimension
        configuration.videoDimension = videoDimension
        configuration.outputDimension = outputs
        configuration = try validated(configuration, flags: ["d_a": "--audio-dimension", "d_v": "--video-dimension", "out_dim": "--outputs"])
        try ensureFitsInMemory(configuration, training: false, source: "summary")
        let store = VAVLModel(configuration).store
        let components: [(String, [String])] = [
            ("θ_a  acoustic branch (proj conv + encoder)", ["acoustic"]),
            ("θ_v  visual branch (proj conv + encoder)", ["visual"]),
            ("θ_s  shared layers (encoder + LayerNorm)", ["shared"]),
            ("head_a", ["head_a"]), ("head_v", ["head_v"]), ("head_av", ["head_av"]),
            ("recon_a", ["recon_a"]), ("recon_v", ["recon_v"]),
        ]
        for (name, prefixes) in components {
            let count = store.parameters.filter { parameter in prefixes.contains { parameter.name.hasPrefix($0 + ".") } }
                .reduce(0) { $0 + $1.count }
            print(name.padding(toLength: 44, withPad: " ", startingAt: 0) + String(count).leftAligned(12))
        }
        print("total".padding(toLength: 44, withPad: " ", startingAt: 0) + String(store.parameterCount).leftAligned(12))
        print("buffers (BatchNorm running statistics)".padding(toLength: 44, withPad: " ", startingAt: 0)
              + String(store.bufferCount).leftAligned(12))
    }
}

extension String {
    fileprivate func leftAligned(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}

/// The configuration table as text: one line per key (docs/DESIGN.md §6).
func configurationTable() -> String {
    let rows = VAVLConfiguration.fields.map { [$0.key, $0.type, $0.defaultValue, $0.range, $0.resume.rawValue, $0.help] }
    let header = ["key", "type", "default", "valid", "on resume", "meaning"]
    let last = header.count - 1
    let widths = (0..<last).map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
    return ([header] + rows).map { row in
        (0..<last).map { row[$0].padding(toLength: widths[$0] + 2, withPad: " ", startingAt: 0) }.joined() + row[last]
    }.joined(separator: "\n")
}
