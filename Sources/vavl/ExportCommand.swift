import ArgumentParser
import Foundation
import MPI
import VAVLData
import VAVLTraining

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a checkpoint's parameters and buffers as safetensors under the canonical names.")

    @OptionGroup var checkpoint: CheckpointOption
    @Option(help: "The .safetensors file to write.") var safetensors: String

    func run() throws {
        try endingWithOneLine {
            let trained = try TrainedModel(checkpoint: checkpoint.resolved())
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let config = String(decoding: try encoder.encode(trained.configuration), as: UTF8.self)
            try Safetensors.export(trained.model, to: safetensors, normalization: trained.normalization,
                                   metadata: ["format": "pt", "vavl_config": config])
            print("wrote \(safetensors): \(trained.model.store.parameters.count) parameters, \(trained.model.store.buffers.count + trained.model.store.counters.count) buffers")
        }
    }
}
