import ArgumentParser
import Foundation
import VAVLCore
import VAVLTraining

/// The configuration flags of `train` and the experiments: what is built, how a step
/// computes, and the schedule — three groups, because `summary` only builds a model and
/// `bench` only times steps, and a flag a command ignores is not offered by it. Every option
/// is optional: unset options keep the value of the preset and the `--config` file, in that
/// order.
struct ModelOptions: ParsableArguments {
    @OptionGroup var model: ModelShapeOptions
    @OptionGroup var step: StepOptions
    @OptionGroup var schedule: ScheduleOptions

    var seed: UInt64? { schedule.seed }
    var namesABase: Bool { model.namesABase }
    func base() throws -> VAVLConfiguration { try model.base() }

    /// What a resumed run starts from: the checkpoint's configuration, with the keys the
    /// user named again over it — the preset's model (`--model`: its model-defining keys
    /// only, which must then agree with the checkpoint's) and the keys a `--config` file
    /// holds. A preset's training keys the user never typed (its epochs, batch size, …)
    /// do not replace the checkpoint's: repeating a command line changes nothing.
    func resumeBase(_ stored: VAVLConfiguration) throws -> VAVLConfiguration {
        guard namesABase else { return stored }
        let named = try model.base(over: stored)
        let fileKeys = try model.configFileKeys()
        var configuration = stored
        for field in VAVLConfiguration.fields where fileKeys.contains(field.key) || (model.model != nil && field.resume == .fixed) {
            field.copy(from: named, into: &configuration)
        }
        return configuration
    }

    /// Preset → config file → flags, validated.
    func resolve() throws -> VAVLConfiguration { try validated(apply(to: try base())) }

    /// The flags the user typed, over `configuration`.
    func apply(to configuration: VAVLConfiguration) throws -> VAVLConfiguration {
        try schedule.apply(to: step.apply(to: model.apply(to: configuration)))
    }
}

/// One validation for every source. A config file is validated as it is read (its errors
/// name the file); what is wrong after the flags are applied is the flags', and the error
/// names the flag that sets the key.
/// `flags`: a command's own flags for keys beyond ``flagSetting``.
func validated(_ configuration: VAVLConfiguration, flags: [String: String] = [:]) throws -> VAVLConfiguration {
    if let (key, problem) = configuration.problems().first {
        let flag = (flags[key] ?? flagSetting[key]).map { "\($0) (key '\(key)')" } ?? "'\(key)'"
        throw ValidationError("invalid configuration: \(flag): \(problem)")
    }
    return configuration
}

/// ``MemoryCheck/ensureFits(_:training:extraBytes:source:)`` as a command-line error.
func ensureFitsInMemory(_ configuration: VAVLConfiguration, training: Bool, extraBytes: Double = 0, source: String) throws {
    do {
        try MemoryCheck.ensureFits(configuration, training: training, extraBytes: extraBytes, source: source)
    } catch let error as MemoryCheck.TooLarge {
        throw ValidationError(error.description)
    }
}

/// The flag that sets each configuration key, where one does.
let flagSetting: [String: String] = [
    "dim": "--dim", "heads": "--heads", "blocks_a": "--blocks", "blocks_v": "--blocks", "blocks_s": "--blocks",
    "conv_kernel": "--conv-kernel", "k_proj": "--proj-kernel", "proj_dim": "--proj-dim", "alpha": "--alpha",
    "batch_size": "--batch-size", "input_dropout": "--dropout", "ff_dropout": "--dropout", "attn_dropout": "--dropout",
    "mhsa_dropout": "--dropout", "conv_dropout": "--dropout", "head_dropout": "--dropout", "phase_order": "--phase-order",
    "lr": "--lr", "epochs": "--epochs", "seed": "--seed", "sampler": "--sampler", "batchnorm": "--batchnorm",
]

/// What is built: the preset, a config file, the sizes and the ablations that remove parts.
struct ModelShapeOptions: ParsableArguments {
    @Option(help: "Model size preset: paper (docs/DESIGN.md §2 sizes; the default), small (dim 64, 1+1+1 blocks) or tiny (dim 16).")
    var model: String?

    @Option(help: "A JSON config (keys of docs/DESIGN.md §6, listed by `vavl summary --keys`) applied after the preset; flags override it.")
    var config: String?

    @Option(help: configurationHelp("dim")) var dim: Int?
    @Option(help: configurationHelp("heads")) var heads: Int?
    @Option(help: "Conformer blocks of the acoustic, visual and shared encoders, e.g. 3,3,2.") var blocks: String?
    @Option(help: configurationHelp("conv_kernel")) var convKernel: Int?
    @Option(help: configurationHelp("k_proj")) var projKernel: Int?
    @Option(help: configurationHelp("proj_dim")) var projDim: Int?
    @Option(help: configurationHelp("alpha")) var alpha: Double?
    @Flag(help: "Ablation: drop the residual over the shared layers.") var noResidual = false
    @Flag(help: "Ablation: no audio-visual head (AV prediction = mean of the unimodal predictions).") var noAvHead = false

    /// Preset → config file → these flags, validated.
    func resolve() throws -> VAVLConfiguration { try validated(apply(to: try base())) }

    /// Whether the preset or a config file was named (a resumed run takes neither).
    var namesABase: Bool { model != nil || config != nil }

    /// The preset (or, without `--model`, `start` if given), then the config file over it.
    func base(over start: VAVLConfiguration? = nil) throws -> VAVLConfiguration {
        var configuration: VAVLConfiguration
        switch model {
        case nil: configuration = start ?? .paper()
        case "paper": configuration = .paper()
        case "small": configuration = .small(audio: 1024, video: 1408, outputs: 6)
        case "tiny": configuration = .tiny(audio: 1024, video: 1408, outputs: 6)
        default: throw ValidationError("unknown --model '\(model ?? "")' (paper, small or tiny)")
        }
        if let config {
            // Keys in the file override the preset; keys absent keep it.
            var merged = try JSONSerialization.jsonObject(with: JSONEncoder().encode(configuration)) as? [String: Any] ?? [:]
            for (key, value) in try configFile(config) { merged[key] = value }
            let decoder = JSONDecoder()
            decoder.userInfo[VAVLConfiguration.sourceKey] = "--config \(config)"
            do {
                configuration = try decoder.decode(VAVLConfiguration.self, from: JSONSerialization.data(withJSONObject: merged))
            } catch let error as ConfigurationError {
                throw ValidationError(error.description)
            } catch {
                throw ValidationError("--config \(config): \(error)")
            }
            do {
                try configuration.validate(source: "--config \(config)")
            } catch let error as ConfigurationError {
                throw ValidationError("invalid configuration: \(error.description)")
            }
        }
        return configuration
    }

    /// The keys the `--config` file holds (none without one).
    func configFileKeys() throws -> Set<String> {
        guard let config else { return [] }
        return Set(try configFile(config).keys)
    }

    private func configFile(_ path: String) throws -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("cannot read the config file \(path)")
        }
        guard let file = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ValidationError("\(path): not a JSON object")
        }
        return file
    }

    func apply(to configuration: VAVLConfiguration) throws -> VAVLConfiguration {
        var configuration = configuration
        if let dim { configuration.dim = dim }
        if let heads { configuration.heads = heads }
        if let blocks {
            let parts = blocks.split(separator: ",").compactMap { Int($0) }
            guard parts.count == 3 else { throw ValidationError("--blocks needs three counts A,V,S, got '\(blocks)'") }
            (configuration.acousticBlocks, configuration.visualBlocks, configuration.sharedBlocks) = (parts[0], parts[1], parts[2])
        }
        if let convKernel { configuration.convolutionKernel = convKernel }
        if let projKernel { configuration.projectionKernel = projKernel }
        if let projDim { configuration.projectionDimension = projDim }
        if let alpha { configuration.alpha = alpha }
        if noResidual { configuration.residual = false }
        if noAvHead { configuration.audioVisualHead = false }
        return configuration
    }
}

/// How one training step computes: what `bench` times besides the model's shape.
struct StepOptions: ParsableArguments {
    @Option(help: configurationHelp("batch_size")) var batchSize: Int?
    @Option(help: "Every dropout rate at once (0 turns dropout off; heads keep their own rate unless this is set).") var dropout: Float?
    @Flag(help: "Train categorical tasks with soft-label cross-entropy.") var softLabel = false
    @Option(help: configurationHelp("phase_order")) var phaseOrder: String?
    @Option(help: configurationHelp("precision")) var precision: Precision?

    func apply(to configuration: VAVLConfiguration) throws -> VAVLConfiguration {
        var configuration = configuration
        if let batchSize { configuration.batchSize = batchSize }
        if let dropout {
            configuration.inputDropout = dropout
            configuration.feedForwardDropout = dropout
            configuration.attentionDropout = dropout
            configuration.attentionOutputDropout = dropout
            configuration.convolutionDropout = dropout
            configuration.headDropout = dropout
        }
        if softLabel { configuration.softLabel = true }
        if let precision { configuration.precision = precision }
        if let phaseOrder {
            configuration.phaseOrder = try phaseOrder.split(separator: ",").map {
                guard let phase = Phase(rawValue: String($0)) else {
                    throw ValidationError("unknown phase '\($0)' (acoustic, visual, audio_visual)")
                }
                return phase
            }
        }
        return configuration
    }
}

/// The schedule: learning rate, epochs and the seed (only training uses them).
struct ScheduleOptions: ParsableArguments {
    @Option(help: configurationHelp("lr")) var lr: Float?
    @Option(help: configurationHelp("epochs")) var epochs: Int?
    @Option(help: configurationHelp("seed")) var seed: UInt64?

    func apply(to configuration: VAVLConfiguration) throws -> VAVLConfiguration {
        var configuration = configuration
        if let lr { configuration.learningRate = lr }
        if let epochs { configuration.epochs = epochs }
        if let seed { configuration.seed = seed }
        return configuration
    }
}

/// A flag's help text from the configuration table: the field's help and its valid range.
func configurationHelp(_ key: String) -> ArgumentHelp {
    guard let field = VAVLConfiguration.field(key) else { return ArgumentHelp("") }
    return ArgumentHelp(field.range == "any" ? field.help : "\(field.help) Valid: \(field.range).")
}

extension Precision: ExpressibleByArgument {}

/// `--precision` for commands that load a checkpoint: by default the products run in the
/// precision the model was trained in.
struct PrecisionOption: ParsableArguments {
    @Option(name: .customLong("precision"),
            help: "Matrix-product arithmetic: fp32 or bf16 (default: the checkpoint's own).")
    var value: Precision?
}
