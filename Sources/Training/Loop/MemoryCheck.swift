import Foundation
import VAVLCore
#if canImport(Glibc)
import Glibc
#endif

/// Refuses a model whose parameters alone could not fit in this machine's memory, before
/// anything is allocated: every size in the configuration table is within its documented
/// range, yet the widest ones together (dim 16,384 with many blocks, say) would need more
/// than any machine has, and an allocation that fails ends a process without a word.
public enum MemoryCheck {
    /// A model too large for this machine, with what it needs and what there is.
    public struct TooLarge: Error, CustomStringConvertible {
        public var source: String
        public var parameters: Int
        public var neededBytes: Double
        public var availableBytes: Double
        public var description: String {
            "\(source): the model has \(parameters) parameters and needs about "
                + String(format: "%.1f GiB, more than this machine's %.1f GiB of memory",
                         neededBytes / 1_073_741_824, availableBytes / 1_073_741_824)
        }
    }

    /// Floats kept per parameter: values and gradients always; in training also Adam's two
    /// moments, the bf16 copy and the allreduce buckets (rounded up).
    static func floatsPerParameter(training: Bool) -> Double { training ? 6 : 2 }

    /// The machine's physical memory in bytes.
    public static var physicalMemory: Double {
        Double(sysconf(Int32(_SC_PHYS_PAGES))) * Double(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// Throws ``TooLarge`` when `configuration`'s parameters (and `extraBytes`, e.g. a
    /// benchmark's synthetic batch) would not fit in physical memory.
    public static func ensureFits(_ configuration: VAVLConfiguration, training: Bool, extraBytes: Double = 0,
                                  source: String) throws {
        let parameters = VAVLModel.parameterCount(configuration)
        let needed = Double(parameters) * 4 * floatsPerParameter(training: training) + extraBytes
        let available = physicalMemory
        if needed > available {
            throw TooLarge(source: source, parameters: parameters, neededBytes: needed, availableBytes: available)
        }
    }
}
