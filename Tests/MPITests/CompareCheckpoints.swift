import Foundation
import MPI
import VAVLCore
import VAVLTraining

/// `vavl-mpi-tests compare-checkpoints A B [--tolerance T]` (one process, no mpirun): loads
/// two checkpoints of the same architecture and compares them tensor by tensor — parameters,
/// BatchNorm buffers and counters, Adam's moments and step counts — and the training
/// position (epoch, iteration, sampler position). Prints the largest absolute and relative
/// difference per kind and the worst tensors; exits 1 if any relative difference
/// (|a − b| / max(max |b|, 1e-3), per tensor) exceeds T (default 0: bit-identical), or the
/// positions or step counts differ.
func runCompareCheckpoints(arguments: [String]) -> Never {
    var paths: [String] = []
    var tolerance: Float = 0
    var index = 0
    while index < arguments.count {
        if arguments[index] == "--tolerance", index + 1 < arguments.count, let value = Float(arguments[index + 1]) {
            tolerance = value
            index += 2
        } else {
            paths.append(arguments[index])
            index += 1
        }
    }
    guard paths.count == 2 else {
        fputs("usage: vavl-mpi-tests compare-checkpoints A.h5 B.h5 [--tolerance T]\n", stderr)
        exit(2)
    }
    func load(_ path: String) -> (VAVLModel, Adam, TrainingState) {
        do {
            let model = VAVLModel(try Checkpoint.configuration(path))
            let optimizer = Adam(store: model.store, configuration: model.configuration.adam)
            let (_, state) = try Checkpoint.load(path, into: model, optimizer: optimizer)
            return (model, optimizer, state)
        } catch {
            fputs("compare-checkpoints: cannot load \(path): \(error)\n", stderr)
            exit(1)
        }
    }
    let (modelA, adamA, stateA) = load(paths[0])
    let (modelB, adamB, stateB) = load(paths[1])
    let a = modelA.store, b = modelB.store
    var failures: [String] = []
    do {
        let positionA = (stateA.epoch, stateA.iteration, stateA.samplerPosition)
        let positionB = (stateB.epoch, stateB.iteration, stateB.samplerPosition)
        print("position: A epoch \(positionA.0) iteration \(positionA.1) batch \(positionA.2); B epoch \(positionB.0) iteration \(positionB.1) batch \(positionB.2)")
        if positionA != positionB { failures.append("the training positions differ") }
    }
    guard a.parameters.map(\.name) == b.parameters.map(\.name), a.buffers.map(\.name) == b.buffers.map(\.name) else {
        fputs("compare-checkpoints: the two checkpoints hold different tensors\n", stderr)
        exit(1)
    }

    /// (kind, tensor, largest |a − b|, relative to the tensor's scale in B)
    var rows: [(kind: String, name: String, absolute: Float, relative: Float)] = []
    func compare(_ kind: String, _ name: String, _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ count: Int) {
        var difference: Float = 0, scale: Float = 0
        for i in 0..<count {
            let d = abs(x[i] - y[i])
            // NaN in either makes the tensors differ whatever the tolerance.
            difference = max(difference, d.isNaN ? .infinity : d)
            scale = max(scale, abs(y[i]))
        }
        rows.append((kind, name, difference, difference / max(scale, 1e-3)))
    }
    for parameter in a.parameters {
        compare("parameter", parameter.name, a.pointer(parameter), b.pointer(parameter), parameter.count)
        compare("adam m", parameter.name, adamA.firstMoment + parameter.offset, adamB.firstMoment + parameter.offset, parameter.count)
        compare("adam v", parameter.name, adamA.secondMoment + parameter.offset, adamB.secondMoment + parameter.offset, parameter.count)
    }
    for buffer in a.buffers {
        compare("buffer", buffer.name, a.pointer(buffer), b.pointer(buffer), buffer.count)
    }
    let counterDifferences = a.counters.filter { a.counterValues[$0.index] != b.counterValues[$0.index] }.map(\.name)
    if !counterDifferences.isEmpty { failures.append("counters differ: \(counterDifferences.joined(separator: ", "))") }
    if adamA.steps != adamB.steps { failures.append("Adam step counts differ") }

    for kind in ["parameter", "buffer", "adam m", "adam v"] {
        let ofKind = rows.filter { $0.kind == kind }
        guard let worst = ofKind.max(by: { $0.relative < $1.relative }) else { continue }
        print(kind.padding(toLength: 9, withPad: " ", startingAt: 0)
              + String(format: " %4d tensors: largest absolute difference %.3e, largest relative %.3e (%@)", ofKind.count, ofKind.map(\.absolute).max() ?? 0, worst.relative, worst.name))
    }
    let over = rows.filter { !($0.relative <= tolerance) }
    for row in over.sorted(by: { $0.relative > $1.relative }).prefix(5) {
        print(String(format: "  over tolerance: %@ %@: absolute %.3e relative %.3e", row.kind, row.name, row.absolute, row.relative))
    }
    if !over.isEmpty { failures.append("\(over.count) tensors differ by more than the tolerance \(tolerance)") }
    if failures.isEmpty {
        print("same: \(paths[0]) and \(paths[1]) agree within relative tolerance \(tolerance)")
        exit(0)
    }
    print("DIFFERENT: " + failures.joined(separator: "; "))
    exit(1)
}
