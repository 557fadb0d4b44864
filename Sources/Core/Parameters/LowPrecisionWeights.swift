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
        refreshed(\.bits, \.staleBits, allocate: { .allocate(capacity: max($0, 1)) }, round: BFloat16.round(_:into:count:))
            + parameter.offset
    }

    /// `parameter`'s values rounded to bf16, as Floats (the emulated path).
    func lowPrecisionFloats(_ parameter: Parameter) -> UnsafeMutablePointer<Float> {
        refreshed(\.floats, \.staleFloats, allocate: { FloatBuffer.allocate(count: $0) }, round: BFloat16.round(_:intoFloats:count:))
            + parameter.offset
    }

    /// One of the two copies with its stale ranges rounded again (allocated and rounded
    /// whole on first use).
    private func refreshed<Element>(_ copyPath: ReferenceWritableKeyPath<LowPrecisionWeights, UnsafeMutablePointer<Element>?>,
                                    _ stalePath: ReferenceWritableKeyPath<LowPrecisionWeights, [Range<Int>]>,
                                    allocate: (Int) -> UnsafeMutablePointer<Element>,
                                    round: (UnsafePointer<Float>, UnsafeMutablePointer<Element>, Int) -> Void)
        -> UnsafeMutablePointer<Element> {
        let copy = lowPrecision
        copy.lock.lock()
        defer { copy.lock.unlock() }
        if copy[keyPath: copyPath] == nil {
            copy[keyPath: copyPath] = allocate(parameterCount)
            copy[keyPath: stalePath] = [0..<parameterCount]
        }
        let target = copy[keyPath: copyPath]!
        for range in copy[keyPath: stalePath] {
            Parallel.chunks(range.count) { chunk in
                let start = range.lowerBound + chunk.lowerBound
                round(values + start, target + start, chunk.count)
            }
        }
        copy[keyPath: stalePath] = []
        return target
    }
}
