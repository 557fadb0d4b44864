#if canImport(Glibc)
import Glibc
#endif
import BLAS
import MPI
import VAVLCore
import VAVLDistributed

/// One full Algorithm-1 iteration (acoustic, visual and AV phases, Adam included) on a
/// synthetic all-paired global batch, timed; the Swift row of `Scripts/bench.sh`.
public final class StepBenchmark {
    public let configuration: VAVLConfiguration
    public let communicator: Communicator
    public let audioLengths: [Int]
    public let videoLengths: [Int]

    /// Frame counts drawn with a fixed seed: audio uniform in 100…200, video in 60…120.
    public init(configuration: VAVLConfiguration, batchSize: Int, seed: UInt64 = 2024, communicator: Communicator) {
        self.configuration = configuration
        self.communicator = communicator
        var generator = SplitMix64(seed: seed)
        audioLengths = (0..<batchSize).map { _ in 100 + Int(generator.next() % 101) }
        videoLengths = (0..<batchSize).map { _ in 60 + Int(generator.next() % 61) }
    }

    /// This rank's share of the global batch (frame-balanced placement, as in training).
    public func localBatch() -> TrainingBatch {
        let planned = (0..<audioLengths.count).map { PlannedUtterance(row: $0, audioFrames: audioLengths[$0], videoFrames: videoLengths[$0]) }
        let planner = BatchPlanner(utterances: planned, batchSize: audioLengths.count, worldSize: communicator.size, seed: 0)
        let rows = planner.place(Array(0..<audioLengths.count)).rankRows[communicator.rank]
        let k = configuration.outputDimension
        let labels = Matrix(rows: rows.count, columns: k)
        for (index, row) in rows.enumerated() { labels.row(index)[row % k] = 1 }
        func input(_ lengths: [Int], _ dimension: Int, salt: UInt64) -> ModalityInput {
            let segments = Segments(lengths: rows.map { lengths[$0] })
            let features = Matrix(rows: segments.totalRows, columns: dimension)
            var generator = SplitMix64(seed: salt ^ UInt64(communicator.rank))
            for i in 0..<features.count { features.data[i] = generator.normal() }
            return ModalityInput(features: features, segments: segments, utterances: Array(0..<rows.count))
        }
        return TrainingBatch(labels: labels, keys: rows.map { UInt64($0) },
                             audio: input(audioLengths, configuration.audioDimension, salt: 1),
                             video: input(videoLengths, configuration.videoDimension, salt: 2))
    }

    public struct Result {
        public var seconds: [Double]
        public var median: Double { seconds.sorted()[seconds.count / 2] }
        public var minimum: Double { seconds.min() ?? 0 }
        /// Wall seconds per iteration by section (rank 0).
        public var sections: [(Profiler.Section, Double)]
        /// CPU seconds per iteration by section, all threads of rank 0.
        public var processorSections: [(Profiler.Section, Double)]
        /// CPU seconds of rank 0's threads per wall second over the timed iterations: how
        /// many threads the step kept busy on average.
        public var busyThreads: Double
        /// CPU seconds per iteration that threads of rank 0 spent waiting for the slowest piece
        /// of a split product (`SplitBalance`).
        public var splitWaitingSeconds: Double
        /// CPU seconds per iteration inside OpenBLAS's sgemm on rank 0, summed over threads,
        /// and the multiply-adds done there (`ProductProfile`).
        public var productSeconds: Double
        public var productMultiplyAdds: Double
        /// The same per shape class, most time first, per iteration.
        public var productShapes: [(ProductProfile.ShapeClass, ProductProfile.Totals)]
        public var allreduceSeconds: Double
        public var flops: Double
        /// Kernel CPU seconds and page faults of rank 0 per timed iteration (`getrusage`): near
        /// zero when the step reuses its memory, as it should after the warm-up.
        public var kernelSeconds: Double
        public var pageFaults: Double
    }

    /// Runs `warmup` untimed and `iterations` timed iterations; the time of an iteration is
    /// the slowest rank's (a barrier closes each one).
    /// Times `iterations` iterations after `warmup` untimed ones. `betweenIterations`, if
    /// given, runs before each timed iteration and after the last, outside the timing (the
    /// bench measures the machine's sgemm rate there, so that the reference drifts with the
    /// machine as the steps do).
    public func run(iterations: Int, warmup: Int, profile: Bool, overlap: Bool = true,
                    betweenIterations: (() -> Void)? = nil) throws -> Result {
        let model = VAVLModel(configuration)
        model.initialize(seed: configuration.seed)
        let collectives = MPICollectives(communicator: communicator)
        collectives.overlapsBackward = overlap
        let algorithm = AlgorithmOne(model: model, collectives: collectives)
        let batch = localBatch()
        let n = audioLengths.count
        let counts = PhaseCounts(acoustic: n, visual: n, audioVisual: n)
        var seconds: [Double] = []
        var processorSeconds = 0.0
        var allreduce = 0.0
        var kernelSeconds = 0.0, pageFaults = 0
        for iteration in 0..<(warmup + iterations) {
            if iteration >= warmup { betweenIterations?() }
            if iteration == warmup {
                Profiler.reset()
                Profiler.enabled = profile
                allreduce = collectives.reductionSeconds
                SplitBalance.resetWaiting()
                ProductProfile.reset()
            }
            communicator.waitForAllRanks("starting a timed step")
            let start = Profiler.now(), processorStart = Profiler.processorTime(), usageStart = Self.usage()
            ProductProfile.enabled = profile && iteration >= warmup
            try algorithm.iterate(batch, counts: counts, iteration: iteration)
            ProductProfile.enabled = false
            communicator.waitForAllRanks("ending a timed step")
            if iteration >= warmup {
                seconds.append(Profiler.now() - start)
                processorSeconds += Profiler.processorTime() - processorStart
                let usageEnd = Self.usage()
                kernelSeconds += usageEnd.kernelSeconds - usageStart.kernelSeconds
                pageFaults += usageEnd.pageFaults - usageStart.pageFaults
            }
        }
        if iterations > 0 { betweenIterations?() }
        Profiler.enabled = false
        let perIteration = { (sections: [(Profiler.Section, Double)]) in sections.map { ($0.0, $0.1 / Double(iterations)) } }
        return Result(seconds: seconds, sections: perIteration(Profiler.seconds),
                      processorSections: perIteration(Profiler.processorSeconds),
                      busyThreads: processorSeconds / max(seconds.reduce(0, +), 1e-9),
                      splitWaitingSeconds: SplitBalance.waitingSeconds / Double(max(iterations, 1)),
                      productSeconds: ProductProfile.seconds / Double(max(iterations, 1)),
                      productMultiplyAdds: Double(ProductProfile.multiplyAdds) / Double(max(iterations, 1)),
                      productShapes: ProductProfile.byShape.map { shape, totals in
                          var perIteration = totals
                          perIteration.seconds /= Double(max(iterations, 1))
                          perIteration.multiplyAdds /= max(iterations, 1)
                          perIteration.calls /= max(iterations, 1)
                          return (shape, perIteration)
                      },
                      allreduceSeconds: (collectives.reductionSeconds - allreduce) / Double(iterations),
                      flops: FlopCount.iteration(configuration, audioLengths: audioLengths, videoLengths: videoLengths),
                      kernelSeconds: kernelSeconds / Double(max(iterations, 1)),
                      pageFaults: Double(pageFaults) / Double(max(iterations, 1)))
    }

    /// This process's kernel CPU time and page faults so far.
    private static func usage() -> (kernelSeconds: Double, pageFaults: Int) {
        let usage = resourceUsage()
        return (Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6, usage.ru_minflt + usage.ru_majflt)
    }

    /// `getrusage` of this process.
    private static func resourceUsage() -> rusage {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage
    }

    /// One head's inference latency (`inferenceLatency`): the median seconds of one utterance's
    /// prediction and, when profiled, where its time went by layer kind (wall and CPU seconds
    /// per utterance) and by product shape.
    public struct InferenceLatency {
        public var head: String
        public var median: Double
        public var sections: [(Profiler.Section, Double)] = []
        public var processorSections: [(Profiler.Section, Double)] = []
        /// CPU seconds and multiply-adds per utterance inside sgemm, by shape class, most time first.
        public var productShapes: [(ProductProfile.ShapeClass, ProductProfile.Totals)] = []
    }

    /// Median seconds of one utterance's prediction by each head (AV, audio only, video only),
    /// at the median frame counts of the benchmark (paper §III-E reports inference cost).
    /// With `profile`, each head then runs `repetitions` more times with the profilers on (the
    /// median is timed without them), for the breakdown.
    public func inferenceLatency(repetitions: Int = 20, profile: Bool = false) -> [InferenceLatency] {
        let model = VAVLModel(configuration)
        model.initialize(seed: configuration.seed)
        let context = RunContext(store: model.store)
        let audio = Matrix(rows: 150, columns: configuration.audioDimension), video = Matrix(rows: 90, columns: configuration.videoDimension)
        var generator = SplitMix64(seed: 3)
        for i in 0..<audio.count { audio.data[i] = generator.normal() }
        for i in 0..<video.count { video.data[i] = generator.normal() }
        let cases: [(String, (Matrix, Segments)?, (Matrix, Segments)?)] = [
            ("audio_visual", (audio, Segments(lengths: [150])), (video, Segments(lengths: [90]))),
            ("audio", (audio, Segments(lengths: [150])), nil),
            ("video", nil, (video, Segments(lengths: [90]))),
        ]
        return cases.map { name, a, v in
            _ = model.predict(audio: a, video: v, context)
            var times: [Double] = []
            for _ in 0..<repetitions {
                let start = Profiler.now()
                _ = model.predict(audio: a, video: v, context)
                times.append(Profiler.now() - start)
            }
            if profile {
                Profiler.reset()
                ProductProfile.reset()
                (Profiler.enabled, ProductProfile.enabled) = (true, true)
                for _ in 0..<repetitions { _ = model.predict(audio: a, video: v, context) }
                (Profiler.enabled, ProductProfile.enabled) = (false, false)
            }
            let perUtterance = { (sections: [(Profiler.Section, Double)]) in sections.map { ($0.0, $0.1 / Double(repetitions)) } }
            return InferenceLatency(head: name, median: times.sorted()[times.count / 2],
                                    sections: profile ? perUtterance(Profiler.seconds) : [],
                                    processorSections: profile ? perUtterance(Profiler.processorSeconds) : [],
                                    productShapes: profile ? ProductProfile.byShape.map { shape, totals in
                                        var perUtterance = totals
                                        perUtterance.seconds /= Double(repetitions)
                                        perUtterance.multiplyAdds /= repetitions
                                        perUtterance.calls /= repetitions
                                        return (shape, perUtterance)
                                    } : [])
        }
    }

    /// The machine's sgemm rate: large square matrices on the rank's threads, the better of
    /// vavl's split products and OpenBLAS's own threading (the same with one thread).
    public static func sgemmGigaflops(size: Int = 2048, repetitions: Int = 5) -> Double {
        let a = Matrix(rows: size, columns: size), b = Matrix(rows: size, columns: size), c = Matrix(rows: size, columns: size)
        for i in 0..<a.count { a.data[i] = Float(i % 7) * 0.1; b.data[i] = Float(i % 5) * 0.1 }
        func best() -> Double {
            BLAS.sgemm(m: size, n: size, k: size, a: a.data, lda: size, b: b.data, ldb: size, c: c.data, ldc: size)
            var best = Double.infinity
            for _ in 0..<repetitions {
                let start = Profiler.now()
                BLAS.sgemm(m: size, n: size, k: size, a: a.data, lda: size, b: b.data, ldb: size, c: c.data, ldc: size)
                best = min(best, Profiler.now() - start)
            }
            return 2 * Double(size * size * size) / best / 1e9
        }
        return max(best(), BLAS.withOpenBLASThreading { best() })
    }

    /// Peak resident memory of this process (getrusage), in MiB.
    public static var peakResidentMiB: Double {
        Double(resourceUsage().ru_maxrss) / 1024
    }
}

/// An analytic count of the useful floating-point operations of one Algorithm-1 iteration
/// (2 per multiply-add; matrix products and convolutions; elementwise work, normalisation
/// and softmax are not counted). Useful means what the model needs, not what an
/// implementation happens to do: valid frames only, convolution taps that fall on an
/// utterance's zero padding not counted, and the relative-position projection (the table is
/// the same for every utterance) counted once per batch at its longest utterance.
/// - per utterance of T frames through a Conformer encoder of width C, H heads, E expansion,
///   kernel K and N blocks with input width I: T·I·C (input projection) + N·[2·2·T·C·E·C
///   (two feed-forward modules) + 4·T·C² (q, k, v, out) + 3·T²·C (content and position
///   scores, context) + T·C·2C + C·taps(T, K) + T·C² (convolution module)], where
///   taps(T, K) = Σ over the K taps of the frames whose source lies inside the utterance;
/// - per batch and encoder, the position projection N·T_max·C²;
/// - a branch adds the temporal projection taps(T, k_proj)·d_m·P and its encoder (I = P);
/// - training a phase costs 3× its forward (forward, input and weight gradients) but for the
///   temporal projection and the position projection, 2× (their inputs are data and a fixed
///   table: no input gradient is formed); the frozen forward of the AV phase 1×; heads are
///   counted with their three linear layers, the AV head without its input gradient (its
///   input, the frozen representations, takes none).
/// `FlopCountTests` checks the count against the multiply-adds of the sgemm calls of a step.
public enum FlopCount {
    /// Σ over the taps of a same-padded kernel of the frames whose source frame is inside an
    /// utterance of `frames` frames.
    static func validTaps(frames: Int, kernel: Int) -> Double {
        let half = kernel / 2
        return Double((0..<kernel).map { max(0, frames - abs($0 - half)) }.reduce(0, +))
    }

    /// Multiply-adds of one utterance through an encoder (forward), the position projection aside.
    static func encoder(_ frames: Int, inputs: Int, blocks: Int, _ c: VAVLConfiguration) -> Double {
        let t = Double(frames), width = Double(c.dim), e = Double(c.feedForwardExpansion)
        let block = 2 * 2 * t * width * e * width + 4 * t * width * width + 3 * t * t * width
            + t * width * 2 * width + width * validTaps(frames: frames, kernel: c.convolutionKernel) + t * width * width
        return t * Double(inputs) * width + Double(blocks) * block
    }

    /// Multiply-adds of an encoder's position projections for a batch whose longest utterance
    /// has `longest` frames (forward).
    static func positions(longest: Int, blocks: Int, _ c: VAVLConfiguration) -> Double {
        Double(blocks) * Double(longest) * Double(c.dim) * Double(c.dim)
    }

    /// Multiply-adds of one utterance's temporal projection (forward).
    static func projection(_ frames: Int, modality: Modality, _ c: VAVLConfiguration) -> Double {
        let inputs = modality == .audio ? c.audioDimension : c.videoDimension
        return validTaps(frames: frames, kernel: c.projectionKernel) * Double(inputs) * Double(c.projectionDimension)
    }

    /// Multiply-adds of one utterance through branch + shared layers (forward), position
    /// projections aside.
    static func representation(_ frames: Int, modality: Modality, _ c: VAVLConfiguration) -> Double {
        let blocks = modality == .audio ? c.acousticBlocks : c.visualBlocks
        return projection(frames, modality: modality, c)
            + encoder(frames, inputs: c.projectionDimension, blocks: blocks, c)
            + encoder(frames, inputs: c.dim, blocks: c.sharedBlocks, c)
    }

    static func head(inputs: Int, outputs: Int, _ c: VAVLConfiguration) -> Double {
        Double(inputs * c.headHidden1 + c.headHidden1 * c.headHidden2 + c.headHidden2 * outputs)
    }

    /// FLOPs (2 per multiply-add) of one iteration on an all-paired batch.
    public static func iteration(_ c: VAVLConfiguration, audioLengths: [Int], videoLengths: [Int]) -> Double {
        let audio = audioLengths.map { representation($0, modality: .audio, c) }.reduce(0, +)
        let video = videoLengths.map { representation($0, modality: .video, c) }.reduce(0, +)
        let n = Double(audioLengths.count)
        let recon = c.reconstructionWeight > 0
        let headsA = n * (head(inputs: c.dim, outputs: c.outputDimension, c) + (recon ? head(inputs: c.dim, outputs: c.audioDimension, c) : 0))
        let headsV = n * (head(inputs: c.dim, outputs: c.outputDimension, c) + (recon ? head(inputs: c.dim, outputs: c.videoDimension, c) : 0))
        let headAV = n * head(inputs: 2 * c.dim, outputs: c.outputDimension, c)
        // Formed neither for the temporal projections (data) nor for the position projections
        // (a fixed table): no input gradient, one forward's worth less each.
        let projections = audioLengths.map { projection($0, modality: .audio, c) }.reduce(0, +)
            + videoLengths.map { projection($0, modality: .video, c) }.reduce(0, +)
        let positionsA = positions(longest: audioLengths.max() ?? 0, blocks: c.acousticBlocks + c.sharedBlocks, c)
        let positionsV = positions(longest: videoLengths.max() ?? 0, blocks: c.visualBlocks + c.sharedBlocks, c)
        // The AV head's input (frozen representations) needs no gradient either.
        let headAVInputGradient = n * Double(2 * c.dim * c.headHidden1)
        let multiplyAdds = 3 * (audio + headsA) + 3 * (video + headsV) + (audio + video) + 3 * headAV - headAVInputGradient
            - projections + 3 * (positionsA + positionsV)
        return 2 * multiplyAdds
    }
}

/// One paper-size Conformer encoder (input 50 → 512-d, 8 heads, 3 blocks, kernel 31) on a
/// ragged batch in training mode with dropout: forward, and forward + backward, timed.
public enum EncoderBenchmark {
    public struct Result {
        public var forwardSeconds: Double
        public var forwardBackwardSeconds: Double
        /// Useful FLOPs of one forward (the same count as ``FlopCount``); backward counts 2×.
        public var forwardFlops: Double
    }

    public static func run(configuration: VAVLConfiguration, lengths: [Int], repetitions: Int) -> Result {
        var conformer = configuration.conformer(inputs: configuration.projectionDimension, blocks: configuration.acousticBlocks)
        conformer.inputs = configuration.projectionDimension
        let registry = ParameterRegistry()
        let encoder = ConformerEncoder(registry, "encoder", conformer)
        let store = ParameterStore(registry)
        store.initialize(seed: 1)
        let context = RunContext(store: store)
        context.useSequentialUtteranceKeys(count: lengths.count)
        let segments = Segments(lengths: lengths)
        let input = Matrix(rows: segments.totalRows, columns: conformer.inputs)
        var generator = SplitMix64(seed: 2)
        for i in 0..<input.count { input.data[i] = generator.normal() }
        let gradient = Matrix(rows: segments.totalRows, columns: conformer.channels)
        for i in 0..<gradient.count { gradient.data[i] = generator.normal() * 0.01 }
        _ = encoder.forward(input, segments: segments, context)
        encoder.backward(gradient, context, needsInputGradient: false)
        var forward: [Double] = [], both: [Double] = []
        for _ in 0..<repetitions {
            var start = Profiler.now()
            _ = encoder.forward(input, segments: segments, context)
            forward.append(Profiler.now() - start)
            start = Profiler.now()
            _ = encoder.forward(input, segments: segments, context)
            encoder.backward(gradient, context, needsInputGradient: false)
            both.append(Profiler.now() - start)
        }
        let flops = 2 * (lengths.map { FlopCount.encoder($0, inputs: conformer.inputs, blocks: conformer.blocks, configuration) }
            .reduce(0, +) + FlopCount.positions(longest: lengths.max() ?? 0, blocks: conformer.blocks, configuration))
        return Result(forwardSeconds: forward.sorted()[forward.count / 2], forwardBackwardSeconds: both.sorted()[both.count / 2],
                      forwardFlops: flops)
    }
}
