import Foundation
import MPI
import VAVLCore
import VAVLData
import VAVLTraining

/// A small mixed corpus (paired, audio-only and video-only utterances), written by rank 0.
func makeCorpus(_ preset: SyntheticPreset, folder: String, utterances: Int = 72) -> String {
    let path = (folder as NSString).appendingPathComponent("\(preset.rawValue).h5")
    if world.rank == 0 {
        var options = SyntheticOptions(preset: preset, output: path)
        options.audioDimension = 12
        options.videoDimension = 10
        options.utterances = utterances
        options.audioOnlyFraction = 0.3
        options.videoOnlyFraction = 0.3
        options.seed = 4
        world.abortOnError("writing \(path)") { _ = try synthesizeCorpus(options) }
    }
    world.abortOnError { try world.barrier() }
    return path
}

func tinyConfiguration(_ corpus: Corpus) -> VAVLConfiguration {
    var configuration = VAVLConfiguration.tiny(audio: corpus.dimension(.audio), video: corpus.dimension(.video),
                                               outputs: corpus.labelCount)
    world.abortOnError { try configuration.adopt(corpus) }
    configuration.learningRate = 1e-3
    configuration.batchSize = 8
    configuration.seed = 21
    return configuration  // dropout on (0.1, heads 0.2): masks are keyed by corpus row
}

/// `mpirun -np R vavl-mpi-tests equivalence`: for each task, R ranks train 5 iterations with
/// dropout on and synchronised BatchNorm; then rank 0 trains the same global batches alone
/// (MPI_COMM_SELF) and the parameters must agree to float tolerance. Also counts steps in
/// which some rank had no utterance for a phase that ran (they must neither hang nor diverge).
func runEquivalence(arguments: [String]) {
    let folder = NSTemporaryDirectory() + "vavl-equivalence-\(getppid())"
    if world.rank == 0 { try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
    let localBatchNorm = arguments.contains("--batchnorm-local")
    let precision: Precision = arguments.contains("--bf16") ? .bf16 : .fp32
    for preset in [SyntheticPreset.cremaD, .mspImprov, .mosei] {
        let path = makeCorpus(preset, folder: folder)
        let corpus = world.abortOnError { try Corpus.open(path) }
        var configuration = tinyConfiguration(corpus)
        configuration.precision = precision
        func train(_ communicator: Communicator, _ name: String, precision: Precision? = nil) -> Trainer {
            var configuration = configuration
            if let precision { configuration.precision = precision }
            var options = TrainingOptions(corpusPath: path, outputDirectory: (folder as NSString).appendingPathComponent(name))
            options.maxIterations = 5
            options.evaluateEachEpoch = false
            options.quiet = true
            options.synchronizedBatchNorm = !localBatchNorm
            try? FileManager.default.createDirectory(atPath: options.outputDirectory, withIntermediateDirectories: true)
            return communicator.abortOnError("training on \(path)") {
                let trainer = try Trainer(configuration: configuration, options: options, communicator: communicator)
                trainer.run()
                return trainer
            }
        }
        let distributed = train(world, "\(preset.rawValue)-np\(world.size)")
        // Steps where a rank's share of a running phase was empty.
        var emptyShares = 0
        for step in 0..<5 {
            let batch = distributed.planner.batch(epoch: 0, step: step)
            for rows in batch.rankRows {
                let audio = rows.filter { corpus.has(.audio, utterance: $0) }.count
                let video = rows.filter { corpus.has(.video, utterance: $0) }.count
                if (batch.counts.acoustic > 0 && audio == 0) || (batch.counts.visual > 0 && video == 0) { emptyShares += 1 }
            }
        }
        if world.rank == 0 {
            let single = train(.selfOnly, "\(preset.rawValue)-np1")
            let a = distributed.model.store, b = single.model.store
            var worst = (name: "", difference: Float(0), relative: Float(0))
            var worstNorm = 0.0
            for parameter in a.parameters {
                let x = a.valuesArray(parameter), y = b.valuesArray(parameter)
                let scale = max(y.map(abs).max() ?? 0, 1e-3)
                let difference = zip(x, y).map { abs($0 - $1) }.max() ?? 0
                // mhsa.key.bias has a zero true gradient: Adam turns rounding noise into ±lr steps.
                // In bf16 a one-ulp fp32 difference (the allreduce's summation order) can flip an
                // operand's bf16 rounding, which moves a gradient by up to 2⁻⁸ of a term. Where a
                // gradient is small, Adam (whose early steps are ±lr whatever the gradient's size)
                // can then step the other way: 2 lr apart per iteration at most, 10 lr in 5, the
                // allowance mhsa.key.bias has in fp32 for the same reason. As a whole the model
                // must be closer to one process's bf16 result than that is to the fp32 one (below).
                let allowance: Float = parameter.name.hasSuffix("mhsa.key.bias") || precision == .bf16
                    ? 10 * configuration.learningRate : 0

                if difference / scale > worst.relative && !parameter.name.hasSuffix("mhsa.key.bias") {
                    worst = (parameter.name, difference, difference / scale)
                }
                if difference > 2e-4 * scale + allowance {
                    let message = "\(preset.rawValue): \(world.size) ranks and 1 process differ at \(parameter.name) by \(difference) (scale \(scale))"
                    if !localBatchNorm { world.abort("check failed: " + message) }
                }
            }
            if precision == .bf16 {
                // Distributing the batch moves the bf16 result less than bf16 itself moves it
                // from fp32: ‖θ(R ranks, bf16) − θ(1, bf16)‖ ≤ ‖θ(1, bf16) − θ(1, fp32)‖.
                let reference = train(.selfOnly, "\(preset.rawValue)-np1-fp32", precision: .fp32).model.store
                func distance(_ p: ParameterStore, _ q: ParameterStore) -> Double {
                    sqrt((0..<p.parameterCount).reduce(0) { $0 + pow(Double(p.values[$1]) - Double(q.values[$1]), 2) })
                }
                let ranks = distance(a, b), precisionGap = distance(b, reference)
                worstNorm = ranks / precisionGap
                if ranks > precisionGap {
                    world.abort("check failed: \(preset.rawValue) bf16: \(world.size) ranks are \(ranks) from one process, farther than bf16 is from fp32 (\(precisionGap))")
                }
            }
            let buffersA = Array(UnsafeBufferPointer(start: a.bufferValues, count: a.bufferCount))
            let buffersB = Array(UnsafeBufferPointer(start: b.bufferValues, count: b.bufferCount))
            let bufferDifference = zip(buffersA, buffersB).map { abs($0 - $1) }.max() ?? 0
            if !localBatchNorm {
                require(bufferDifference < (precision == .bf16 ? 1e-3 : 1e-4), "\(preset.rawValue): running statistics differ by \(bufferDifference)")
            }
            print((localBatchNorm ? "report" : "ok  ") + String(format: " %@ %@: %d ranks vs 1 process after 5 iterations: largest relative parameter difference %.2e (%@, %.2f lr), %@running stats %.2e; %d rank-steps with an empty share of a running phase",
                         precision.rawValue, preset.rawValue, world.size, worst.relative, worst.name, worst.difference / configuration.learningRate,
                         precision == .bf16 ? String(format: "distance %.2f of the bf16-fp32 gap, ", worstNorm) : "", bufferDifference, emptyShares))
        }
        world.abortOnError { try world.barrier() }
    }
    if world.rank == 0 { try? FileManager.default.removeItem(atPath: folder) }
}

/// `mpirun -np 2 vavl-mpi-tests corrupt`: rank 0 writes a corpus whose utterance read by
/// rank 1 in the first step holds a NaN; training must bring the job down naming it.
func runCorruptUtterance(arguments: [String]) {
    let folder = NSTemporaryDirectory() + "vavl-corrupt-\(getppid())"
    if world.rank == 0 { try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
    let path = makeCorpus(.cremaD, folder: folder, utterances: 40)
    // Every rank closes the corpus before rank 0 rewrites a value (HDF5 locks open files).
    let (configuration, victim, victimID): (VAVLConfiguration, Int, String) = world.abortOnError {
        let corpus = try Corpus.open(path)
        let train = corpus.utterances(in: .train).map {
            PlannedUtterance(row: $0, audioFrames: corpus.frameCount(.audio, utterance: $0), videoFrames: corpus.frameCount(.video, utterance: $0))
        }
        let configuration = tinyConfiguration(corpus)
        let planner = BatchPlanner(utterances: train, batchSize: configuration.batchSize, worldSize: world.size, seed: configuration.seed)
        let victim = planner.batch(epoch: 0, step: 0).rankRows[1].first { corpus.has(.audio, utterance: $0) }!
        return (configuration, victim, corpus.ids[victim])
    }
    world.abortOnError { try world.barrier() }
    if world.rank == 0 {
        print("corrupting utterance \(victimID) (rank 1's first batch)")
        fflush(stdout)
        world.abortOnError { try corruptFirstAudioValue(path: path, utterance: victim) }
    }
    world.abortOnError { try world.barrier() }
    var options = TrainingOptions(corpusPath: path, outputDirectory: (folder as NSString).appendingPathComponent("run"))
    options.maxIterations = 3
    options.quiet = true
    try? FileManager.default.createDirectory(atPath: options.outputDirectory, withIntermediateDirectories: true)
    world.abortOnError {
        let trainer = try Trainer(configuration: configuration, options: options, communicator: world)
        trainer.run()
    }
    print("rank \(world.rank): training finished although utterance \(victimID) is corrupt")
    exit(0)
}
