import Foundation
import HDF5
import VAVLCore

/// Writes the `safetensors` format: an 8-byte little-endian header length, a JSON header
/// mapping each name to its dtype, shape and byte range, then the raw little-endian data.
/// Parameters and buffers use the canonical names (DESIGN §6), so `safetensors.torch.load_file`
/// gives a state dict that a PyTorch model with DESIGN's module tree loads directly. The
/// feature normalisation travels along as `normalization.{audio,video}_{mean,std}` (F64, the
/// statistics as trained with: x̃ = (x − mean) / (std + 1e-6)), and the configuration —
/// the label transform and label names included — as the `vavl_config` metadata, so the
/// file alone is enough to predict.
public enum Safetensors {
    public static func export(_ model: VAVLModel, to path: String, normalization: Normalization? = nil,
                              metadata: [String: String] = [:]) throws {
        let store = model.store
        var header: [String: Any] = [:]
        var payload = Data()
        func add(_ name: String, dtype: String, shape: [Int], bytes: UnsafeRawBufferPointer) {
            header[name] = ["dtype": dtype, "shape": shape, "data_offsets": [payload.count, payload.count + bytes.count]]
            payload.append(contentsOf: bytes)
        }
        for parameter in store.parameters {
            add(parameter.name, dtype: "F32", shape: parameter.shape,
                bytes: UnsafeRawBufferPointer(start: store.pointer(parameter), count: parameter.count * 4))
        }
        for buffer in store.buffers {
            add(buffer.name, dtype: "F32", shape: buffer.shape,
                bytes: UnsafeRawBufferPointer(start: store.pointer(buffer), count: buffer.count * 4))
        }
        for counter in store.counters {
            add(counter.name, dtype: "I64", shape: [],
                bytes: UnsafeRawBufferPointer(start: store.counterValues + counter.index, count: 8))
        }
        for modality in [Modality.audio, .video] {
            guard let statistics = normalization?.statistics(modality) else { continue }
            for (name, values) in [("mean", statistics.mean), ("std", statistics.std)] {
                values.withUnsafeBytes { add("normalization.\(modality.rawValue)_\(name)", dtype: "F64", shape: [values.count], bytes: $0) }
            }
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        // Pad the header with spaces to 8-byte alignment, as the reference implementation does.
        while json.count % 8 != 0 { json.append(0x20) }
        var length = UInt64(json.count).littleEndian
        var file = Data(bytes: &length, count: 8)
        file.append(json)
        file.append(payload)
        try SafeFiles.replace(path, with: file)
    }
}
