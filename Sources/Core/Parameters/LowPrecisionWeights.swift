import BLAS
import Foundation

/// The bf16 copy of a store's parameter values that bf16 products read: rounded once after
/// each change (an optimiser step over a phase's range, a load, a broadcast), not at every
/// use. Whoever writes `ParameterStore.values` directly calls
/// ``ParameterStore/parametersChanged(_:)``; the copy of the changed range is rounded again
/// the next time a product asks for a parameter.
final class LowPrecisionWeights: @unchecked Sendable {
    /// bf16 bits for oneDNN, or rounded Floats for the emulated path: whichever the current
    /// ``MatrixEngine/path`` needs, each with its own ranges still to round.
    var bits: UnsafeMutablePointer<UInt16>?
    var floats: UnsafeMutablePointer<Float>?
    var staleBits: [Range<Int>] = []
    var staleFloats: [Range<Int>] = []
    let lock = NSLock()

    func deallocate() {
        bits?.deallocate()
        floats.map(FloatBuffer.deallocate)
    }
}

extension ParameterStore {
    /// Marks `range` of the values (all of them by default) as changed, so the bf16 copy is
    /// rounded again before its next use.
    public func parametersChanged(_ range: Range<Int>? = nil) {
        let range = range ?? 0..<parameterCount
        let copy = lowPrecision
        copy.lock.lock()
        defer { copy.lock.unlock() }
        // Nothing to track before a bf16 copy exists; past a few ranges, round everything.
        if copy.bits != nil { copy.staleBits = copy.staleBits.count < 16 ? copy.staleBits + [range] : [0..<parameterCount] }
        if copy.floats != nil { copy.staleFloats = copy.staleFloats.count < 16 ? copy.staleFloats + [range] : [0..<parameterCount] }
    }

    /// `parameter`'s values rounded to bf16 bits (layout as `pointer(parameter)`).
    func lowPrecisionBits(_ parameter: Parameter) -> UnsafeMutablePointer<UInt16> {
        let copy = lowPrecision
        copy.lock.lock()
        defer { copy.lock.unlock() }
        if copy.bits == nil {
            copy.bits = .allocate(capacity: max(parameterCount, 1))
            copy.staleBits = [0..<parameterCount]
        }
        let target = copy.bits!
        for range in copy.staleBits {
            Parallel.chunks(range.count) { chunk in
                let start = range.lowerBound + chunk.lowerBound
                BFloat16.round(values + start, into: target + start, count: chunk.count)
            }
        }
        copy.staleBits = []
        return target + parameter.offset
    }

    /// `parameter`'s values rounded to bf16, as Floats (the emulated path).
    func lowPrecisionFloats(_ parameter: Parameter) -> UnsafeMutablePointer<Float> {
        let copy = lowPrecision
        copy.lock.lock()
        defer { copy.lock.unlock() }
        if copy.floats == nil {
            copy.floats = FloatBuffer.allocate(count: parameterCount)
            copy.staleFloats = [0..<parameterCount]
        }
        let target = copy.floats!
        for range in copy.staleFloats {
            Parallel.chunks(range.count) { chunk in
                let start = range.lowerBound + chunk.lowerBound
                BFloat16.round(values + start, intoFloats: target + start, count: chunk.count)
            }
        }
        copy.staleFloats = []
        return target + parameter.offset
    }
}
