import Foundation
import VAVLVocabulary

// The configuration table: one row per field of `VAVLConfiguration`. Everything else about a
// field is derived from its row — its JSON key in `--config` files and in checkpoints
// (docs/DESIGN.md §6), its default (the property's initial value), its valid range, whether a
// resumed run may change it, and its help text.

/// What a resumed run may do with a field (docs/DESIGN.md §6, "resume").
public enum ResumeRule: String, Sendable {
    /// Defines the model or its arithmetic: a checkpoint only loads into an equal value.
    case fixed
    /// Changes what training does from here on (optimiser, sampling, regularisation): kept
    /// from the checkpoint unless explicitly overridden.
    case overridable
    /// Schedule only (epochs): may change freely on resume.
    case free
}

/// A configuration value that is out of range, of the wrong type or unknown, naming where
/// it came from (a flag, a `--config` file, a checkpoint) and the key.
public struct ConfigurationError: Error, CustomStringConvertible, Equatable, Sendable {
    public var source: String
    public var key: String?
    public var problem: String

    public init(source: String, key: String? = nil, _ problem: String) {
        self.source = source
        self.key = key
        self.problem = problem
    }

    public var description: String {
        if let key { return "\(source): '\(key)': \(problem)" }
        return "\(source): \(problem)"
    }
}

/// The JSON key of a field, for `Codable` containers keyed by the table.
public struct ConfigurationKey: CodingKey {
    public var stringValue: String
    public var intValue: Int? { nil }
    public init(_ key: String) { stringValue = key }
    public init?(stringValue: String) { self.stringValue = stringValue }
    public init?(intValue: Int) { nil }
}

/// A valid range of one field, with the words that describe it in help and errors.
public struct ValidRange<Value>: @unchecked Sendable {
    public let description: String
    let accepts: (Value) -> Bool

    public init(_ description: String, _ accepts: @escaping (Value) -> Bool) {
        self.description = description
        self.accepts = accepts
    }

    public static var any: ValidRange { ValidRange("any") { _ in true } }
}

extension ValidRange where Value == Int {
    public static func within(_ range: ClosedRange<Int>) -> ValidRange {
        ValidRange("\(range.lowerBound)…\(range.upperBound)") { range.contains($0) }
    }
}

extension ValidRange where Value == Float {
    /// A rate in [0, 1).
    public static var probability: ValidRange { ValidRange("0 ≤ p < 1") { $0 >= 0 && $0 < 1 } }
    /// A finite value above 0 and at most `maximum`.
    public static func positive(upTo maximum: Float) -> ValidRange {
        ValidRange("0 < x ≤ \(maximum)") { $0.isFinite && $0 > 0 && $0 <= maximum }
    }
    /// A finite value in [0, maximum].
    public static func nonNegative(upTo maximum: Float) -> ValidRange {
        ValidRange("0 ≤ x ≤ \(maximum)") { $0.isFinite && $0 >= 0 && $0 <= maximum }
    }
}

/// Size limits of the configuration: far above any model this trainer is meant for, low
/// enough that no valid value can make an allocation overflow or exhaust memory by itself.
public enum ConfigurationLimits {
    /// Feature dimensions d_a, d_v.
    public static let featureDimension = 1 << 16
    /// Model width, projection width and head widths.
    public static let width = 16_384
    public static let heads = 256
    public static let blocks = 64
    public static let kernel = 255
    public static let outputs = 4096
    public static let batchSize = 1 << 20
    public static let epochs = 1_000_000
}

/// One row of the configuration table.
public struct ConfigurationField: @unchecked Sendable {
    /// The key in JSON configs and in checkpoints (docs/DESIGN.md §6).
    public let key: String
    public let resume: ResumeRule
    public let help: String
    /// The valid range in words ("1…16384", "0 ≤ p < 1", "any").
    public let range: String
    /// The value's type in JSON ("integer", "number", "string: fp32|bf16", …).
    public let type: String
    let encodeValue: (VAVLConfiguration, inout KeyedEncodingContainer<ConfigurationKey>) throws -> Void
    let decodeValue: (inout VAVLConfiguration, KeyedDecodingContainer<ConfigurationKey>) throws -> Void
    let isValid: (VAVLConfiguration) -> Bool
    let isEqual: (VAVLConfiguration, VAVLConfiguration) -> Bool
    let assign: (inout VAVLConfiguration, VAVLConfiguration) -> Void
    let text: (VAVLConfiguration) -> String

    /// The value of this field in `configuration`, as printed.
    public func value(in configuration: VAVLConfiguration) -> String { text(configuration) }

    /// Sets this field of `target` to its value in `source`.
    public func copy(from source: VAVLConfiguration, into target: inout VAVLConfiguration) { assign(&target, source) }

    /// The default, as printed.
    public var defaultValue: String { text(VAVLConfiguration()) }

    init<Value: Codable & Equatable>(_ key: String, _ path: WritableKeyPath<VAVLConfiguration, Value>,
                                     _ resume: ResumeRule, _ range: ValidRange<Value> = .any, help: String) {
        self.key = key
        self.resume = resume
        self.help = help
        self.range = range.description
        self.type = Self.jsonType(Value.self)
        let codingKey = ConfigurationKey(key)
        encodeValue = { configuration, container in try container.encode(configuration[keyPath: path], forKey: codingKey) }
        decodeValue = { configuration, container in
            configuration[keyPath: path] = try container.decode(Value.self, forKey: codingKey)
        }
        isValid = { range.accepts($0[keyPath: path]) }
        isEqual = { $0[keyPath: path] == $1[keyPath: path] }
        assign = { $0[keyPath: path] = $1[keyPath: path] }
        text = { configuration in
            // As it is written in JSON, so the printed table can be pasted into a config.
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            guard let data = try? encoder.encode(configuration[keyPath: path]) else {
                return "\(configuration[keyPath: path])"  // JSON has no NaN or infinity
            }
            return String(decoding: data, as: UTF8.self).replacingOccurrences(of: ",", with: ", ")
        }
    }
}

extension ConfigurationField {
    /// How a value of `type` is written in JSON; "?" for a type this list lacks (a test
    /// checks every field has a name).
    static func jsonType(_ type: Any.Type) -> String {
        func choices<Choice: CaseIterable & RawRepresentable>(_: Choice.Type) -> String where Choice.RawValue == String {
            Choice.allCases.map(\.rawValue).joined(separator: "|")
        }
        switch type {
        case is Int.Type, is UInt64.Type: return "integer"
        case is Float.Type, is Double.Type: return "number"
        case is Double?.Type: return "number or null"
        case is Bool.Type: return "boolean"
        case is String.Type: return "string"
        case is PredictionTask.Type: return "string: " + choices(PredictionTask.self)
        case is Precision.Type: return "string: " + choices(Precision.self)
        case is [Float].Type: return "list of numbers"
        case is [String].Type: return "list of strings"
        case is [Phase].Type: return "list of: " + choices(Phase.self)
        case is [LabelTransform].Type: return "list of objects"
        default: return "?"
        }
    }
}

extension VAVLConfiguration {
    /// The configuration table. Its order is the order of the printed table and of the keys
    /// in written JSON.
    public static let fields: [ConfigurationField] = {
        let width = ValidRange<Int>.within(1...ConfigurationLimits.width)
        let feature = ValidRange<Int>.within(1...ConfigurationLimits.featureDimension)
        let blocks = ValidRange<Int>.within(1...ConfigurationLimits.blocks)
        let kernel = ValidRange<Int>("odd, 1…\(ConfigurationLimits.kernel)") { $0 % 2 == 1 && (1...ConfigurationLimits.kernel).contains($0) }
        return [
            // Architecture (DESIGN §2)
            .init("d_a", \.audioDimension, .fixed, feature, help: "Acoustic feature dimension (the corpus decides it)."),
            .init("d_v", \.videoDimension, .fixed, feature, help: "Visual feature dimension (the corpus decides it)."),
            .init("proj_dim", \.projectionDimension, .fixed, width, help: "Width of the temporal projection (paper 50)."),
            .init("k_proj", \.projectionKernel, .fixed, kernel, help: "Temporal projection kernel (paper 5; 1 reproduces the released code)."),
            .init("dim", \.dim, .fixed, width, help: "Model dimension (paper 512); a multiple of heads."),
            .init("heads", \.heads, .fixed, .within(1...ConfigurationLimits.heads), help: "Attention heads (paper 8)."),
            .init("blocks_a", \.acousticBlocks, .fixed, blocks, help: "Conformer blocks of the acoustic encoder (paper 3)."),
            .init("blocks_v", \.visualBlocks, .fixed, blocks, help: "Conformer blocks of the visual encoder (paper 3)."),
            .init("blocks_s", \.sharedBlocks, .fixed, blocks, help: "Conformer blocks of the shared encoder (paper 2)."),
            .init("ff_expansion", \.feedForwardExpansion, .fixed, .within(1...16), help: "Feed-forward expansion factor (paper 4)."),
            .init("conv_kernel", \.convolutionKernel, .fixed, kernel, help: "Depthwise convolution kernel (paper 31)."),
            .init("head_hidden1", \.headHidden1, .fixed, width, help: "First hidden width of the heads (paper 512)."),
            .init("head_hidden2", \.headHidden2, .fixed, width, help: "Second hidden width of the heads (paper 256)."),
            .init("out_dim", \.outputDimension, .fixed, .within(1...ConfigurationLimits.outputs), help: "Outputs: classes or attributes (the corpus decides it)."),
            .init("task", \.task, .fixed, help: "categorical, dimensional or sentiment (the corpus decides it)."),
            .init("residual", \.residual, .fixed, help: "Residual over the shared layers (false: ablation)."),
            .init("av_head", \.audioVisualHead, .fixed, help: "Audio-visual head (false: AV prediction = mean of the unimodal ones)."),
            .init("precision", \.precision, .fixed, help: "Matrix-product arithmetic: fp32, or bf16 operands with fp32 accumulation."),
            // Regularisation and normalisation (DESIGN §2, §3)
            .init("soft_label", \.softLabel, .overridable, help: "Categorical tasks train with soft-label cross-entropy."),
            .init("alpha", \.alpha, .overridable,
                  ValidRange("null or 0 ≤ α ≤ 1000") { $0 == nil || ($0!.isFinite && $0! >= 0 && $0! <= 1000) },
                  help: "Reconstruction weight α (null: 2 categorical, 1 otherwise; 0 = no reconstruction)."),
            .init("input_dropout", \.inputDropout, .overridable, .probability, help: "Dropout on the branch inputs (paper 0.1)."),
            .init("ff_dropout", \.feedForwardDropout, .overridable, .probability, help: "Feed-forward dropout (paper 0.1)."),
            .init("attn_dropout", \.attentionDropout, .overridable, .probability, help: "Attention-weight dropout (paper 0.1)."),
            .init("mhsa_dropout", \.attentionOutputDropout, .overridable, .probability, help: "Dropout after self-attention (paper 0.1)."),
            .init("conv_dropout", \.convolutionDropout, .overridable, .probability, help: "Convolution-module dropout (paper 0.1)."),
            .init("head_dropout", \.headDropout, .overridable, .probability, help: "Head dropout (paper 0.2)."),
            .init("ln_eps", \.layerNormEpsilon, .overridable, .positive(upTo: 1), help: "LayerNorm ε."),
            .init("bn_eps", \.batchNormEpsilon, .overridable, .positive(upTo: 1), help: "BatchNorm ε."),
            .init("bn_momentum", \.batchNormMomentum, .overridable, .nonNegative(upTo: 1), help: "BatchNorm running-statistics momentum."),
            // Optimisation and training (DESIGN §3)
            .init("lr", \.learningRate, .overridable, .positive(upTo: 10), help: "Adam learning rate (paper 5e-5)."),
            .init("betas", \.betas, .overridable,
                  ValidRange("two values in [0, 1)") { $0.count == 2 && $0.allSatisfy { $0 >= 0 && $0 < 1 } },
                  help: "Adam β1, β2 (paper 0.95, 0.999)."),
            .init("adam_eps", \.adamEpsilon, .overridable, .positive(upTo: 1), help: "Adam ε."),
            .init("weight_decay", \.weightDecay, .overridable, .nonNegative(upTo: 1), help: "Adam weight decay (L2 added to the gradient)."),
            .init("phase_order", \.phaseOrder, .overridable,
                  ValidRange("1–3 distinct phases") { !$0.isEmpty && Set($0).count == $0.count },
                  help: "Order of Algorithm 1's phases (acoustic, visual, audio_visual)."),
            .init("label_names", \.labelNames, .fixed, help: "Label columns (the corpus decides them)."),
            .init("label_transform", \.labelTransform, .fixed, help: "Dimensional label mapping (the corpus decides it)."),
            .init("seed", \.seed, .overridable, help: "Seed of initialisation, sampling and dropout."),
            .init("batch_size", \.batchSize, .overridable, .within(1...ConfigurationLimits.batchSize), help: "Global batch size (paper 32; 16 for MSP-IMPROV)."),
            .init("epochs", \.epochs, .free, .within(0...ConfigurationLimits.epochs), help: "Epochs (paper 20)."),
            .init("sampler", \.sampler, .overridable,
                  ValidRange("natural or balanced") { ["natural", "balanced"].contains($0) }, help: "Batch composition."),
            .init("batchnorm", \.batchnorm, .overridable,
                  ValidRange("sync or local") { ["sync", "local"].contains($0) }, help: "BatchNorm statistics over all ranks (sync) or per rank (local)."),
        ]
    }()

    /// The row of `key`, if there is one.
    public static func field(_ key: String) -> ConfigurationField? { fields.first { $0.key == key } }

    /// The problems of this configuration, each naming its key: values out of their range,
    /// then the rules that tie fields together. Empty when it is valid.
    public func problems() -> [(key: String, problem: String)] {
        var found = Self.fields.filter { !$0.isValid(self) }.map { ($0.key, "\($0.value(in: self)) is not valid (\($0.range))") }
        if heads > 0, dim % heads != 0 { found.append(("heads", "dim \(dim) is not a multiple of heads \(heads)")) }
        return found
    }

    /// Throws the first problem of ``problems()``, naming `source`.
    public func validate(source: String) throws {
        if let (key, problem) = problems().first { throw ConfigurationError(source: source, key: key, problem) }
    }

    /// Every field whose value differs from `stored`, with both values as printed.
    public func changes(from stored: VAVLConfiguration) -> [(field: ConfigurationField, stored: String, now: String)] {
        Self.fields.filter { !$0.isEqual(stored, self) }.map { ($0, $0.value(in: stored), $0.value(in: self)) }
    }

    /// `self` with `key` set to `json` (a JSON value, as in a config file), checked as a
    /// config file's key is: unknown keys and wrong types are errors naming the key.
    public func setting(_ key: String, json: String, source: String) throws -> VAVLConfiguration {
        guard Self.field(key) != nil else {
            throw ConfigurationError(source: source, key: key, "unknown key (known: \(Self.fields.map(\.key).joined(separator: ", ")))")
        }
        var object = try JSONSerialization.jsonObject(with: JSONEncoder().encode(self)) as? [String: Any] ?? [:]
        let value: Any
        do {
            value = try JSONSerialization.jsonObject(with: Data(json.utf8), options: [.fragmentsAllowed])
        } catch {
            value = json  // a bare word: a string value (`sampler=balanced`)
        }
        object[key] = value
        let decoder = JSONDecoder()
        decoder.userInfo[Self.sourceKey] = source
        return try decoder.decode(VAVLConfiguration.self, from: JSONSerialization.data(withJSONObject: object))
    }

    /// The fields of `fixed` rule that differ between a stored configuration and this one,
    /// as "key stored vs this" (and whether both have reconstruction heads, which α decides).
    public func incompatibilities(with stored: VAVLConfiguration) -> [String] {
        var differences = Self.fields.filter { $0.resume == .fixed && !$0.isEqual(stored, self) && !$0.key.hasPrefix("label_") }
            .map { "\($0.key) \($0.value(in: stored)) vs \($0.value(in: self))" }
        if (stored.reconstructionWeight > 0) != (reconstructionWeight > 0) {
            differences.append("reconstruction \(stored.reconstructionWeight > 0) vs \(reconstructionWeight > 0)")
        }
        return differences
    }
}

extension VAVLConfiguration: Codable {
    /// Source name for error messages, set in a decoder's `userInfo` (a file, "--config F").
    public static let sourceKey = CodingUserInfoKey(rawValue: "vavl.configuration.source")!
    /// With `true` under this key, every key of the table must be present (a checkpoint of
    /// the current version stores them all; a missing one means a damaged or forged file).
    /// Otherwise absent keys keep their defaults (config files; older checkpoints, DESIGN §6).
    public static let requireEveryKey = CodingUserInfoKey(rawValue: "vavl.configuration.requireEveryKey")!

    /// Decodes the keys present over the defaults, so configs written by older versions
    /// (which lack newer keys) load; an unknown key or a value of the wrong type is an error
    /// naming the key. Ranges are checked by ``validate(source:)``, not here.
    public init(from decoder: Decoder) throws {
        self.init()
        let source = decoder.userInfo[Self.sourceKey] as? String ?? "config"
        let container = try decoder.container(keyedBy: ConfigurationKey.self)
        let known = Set(Self.fields.map(\.key))
        if let unknown = container.allKeys.map(\.stringValue).filter({ !known.contains($0) }).sorted().first {
            throw ConfigurationError(source: source, key: unknown,
                                     "unknown key (known: \(Self.fields.map(\.key).joined(separator: ", ")))")
        }
        if decoder.userInfo[Self.requireEveryKey] as? Bool == true,
           let missing = Self.fields.first(where: { !container.contains(ConfigurationKey($0.key)) }) {
            throw ConfigurationError(source: source, key: missing.key, "missing (a configuration of this version stores every key)")
        }
        for field in Self.fields where container.contains(ConfigurationKey(field.key)) {
            do {
                try field.decodeValue(&self, container)
            } catch {
                throw ConfigurationError(source: source, key: field.key, "not a valid value (\(field.range)): \(error)")
            }
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: ConfigurationKey.self)
        for field in Self.fields { try field.encodeValue(self, &container) }
    }
}
