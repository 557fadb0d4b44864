import ArgumentParser
import BLAS
import Foundation
import MPI
import VAVLCore
import VAVLTraining

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time one full Algorithm-1 iteration on a synthetic all-paired batch (also under mpirun).",
        discussion: """
        Audio frames uniform in 100–200, video in 60–120 (fixed seed), categorical with 6 classes, dropout \
        on. Prints the time per phase and per layer kind, GFLOP/s on the analytic count of useful FLOPs, \
        the machine's sgemm rate, the step's sgemm time by shape class, inference latency per head, peak \
        RSS, every iteration's time (`iterations_s=`), and `median_s=<seconds>` last.
        """)

    @OptionGroup var model: ModelShapeOptions
    @OptionGroup var step: StepOptions
    @Option(help: "Compute threads per rank (matrix products and elementwise passes). Valid: 1…1024.") var threads: Int?
    @Option(help: "Timed iterations. Valid: 1…100000.") var iterations = 5
    @Option(help: "Untimed warm-up iterations. Valid: 0…100000.") var warmup = 1

    func validate() throws {
        guard (1...100_000).contains(iterations) else { throw ValidationError("--iterations \(iterations): valid 1…100000") }
        guard (0...100_000).contains(warmup) else { throw ValidationError("--warmup \(warmup): valid 0…100000") }
        if let threads, !(1...1024).contains(threads) { throw ValidationError("--threads \(threads): valid 1…1024") }
    }
    @Flag(help: "Skip the sgemm reference and the inference latencies.") var stepOnly = false
    @Flag(help: "Reduce gradients only after the backward (no overlap), to measure what the overlap buys.") var noOverlap = false
    @Flag(help: "Time one Conformer encoder (input 50 → dim, the acoustic block count) on 32 utterances of 100–200 frames instead.")
    var encoderOnly = false
    @Flag(help: "Time only inference: one utterance (150 audio, 90 video frames) by each head, `--iterations` times, with where the time goes by layer kind.")
    var inferenceOnly = false

    func run() throws {
        let world = Communicator.world
        world.abortOnError {
            var configuration = try validated(step.apply(to: model.apply(to: model.base())))
            if (model.model ?? "paper") != "paper" {
                configuration.audioDimension = 1024
                configuration.videoDimension = 1408
            }
            configuration.outputDimension = 6
            configuration.task = .categorical
            // The synthetic batch: up to 200 audio and 120 video frames per utterance.
            let batchBytes = Double(configuration.batchSize) * Double(200 * configuration.audioDimension + 120 * configuration.videoDimension) * 4
            try ensureFitsInMemory(configuration, training: true, extraBytes: batchBytes, source: "bench")
            if let threads { BLAS.threadCount = threads }
            if encoderOnly {
                var generator = SplitMix64(seed: 2024)
                let lengths = (0..<configuration.batchSize).map { _ in 100 + Int(generator.next() % 101) }
                let result = EncoderBenchmark.run(configuration: configuration, lengths: lengths, repetitions: iterations)
                guard world.rank == 0 else { return }
                print(String(format: "Conformer encoder: dim %d, %d heads, %d blocks, kernel %d; %d utterances, %d frames; %d compute thread(s)",
                             configuration.dim, configuration.heads, configuration.acousticBlocks, configuration.convolutionKernel,
                             lengths.count, lengths.reduce(0, +), BLAS.threadCount))
                print(String(format: "forward: %.3f s, %.1f GFLOP/s", result.forwardSeconds, result.forwardFlops / result.forwardSeconds / 1e9))
                print(String(format: "forward + backward: %.3f s, %.1f GFLOP/s", result.forwardBackwardSeconds,
                             3 * result.forwardFlops / result.forwardBackwardSeconds / 1e9))
                print(String(format: "median_s=%.4f", result.forwardBackwardSeconds))
                return
            }
            if inferenceOnly {
                let benchmark = StepBenchmark(configuration: configuration, batchSize: 1, communicator: world)
                let latencies = benchmark.inferenceLatency(repetitions: iterations, profile: true)
                guard world.rank == 0 else { return }
                print("precision: \(configuration.precision.rawValue); cpu: \(MatrixEngine.cpuModel); \(BLAS.threadCount) compute thread(s)")
                for latency in latencies {
                    print(String(format: "inference latency %@: %.2f ms per utterance (median of %d)", latency.head as NSString,
                                 latency.median * 1000, iterations))
                    let processor = Dictionary(uniqueKeysWithValues: latency.processorSections.map { ($0.0, $0.1) })
                    for (section, seconds) in latency.sections where seconds > 0 && !Profiler.Section.phases.contains(section) {
                        print(String(format: "  %@ %7.2f ms, threads kept busy %4.2f", section.rawValue.padding(toLength: 30, withPad: " ", startingAt: 0),
                                     seconds * 1000, (processor[section] ?? 0) / seconds))
                    }
                    let productSeconds = latency.productShapes.reduce(0) { $0 + $1.1.seconds }
                    let productWork = latency.productShapes.reduce(0) { $0 + $1.1.multiplyAdds }
                    print(String(format: "  sgemm: %.2f CPU ms at %.1f GFLOP/s per thread; by shape (CPU ms, GFLOP/s, calls):", productSeconds * 1000,
                                 2 * Double(productWork) / max(productSeconds, 1e-9) / 1e9))
                    for (shape, totals) in latency.productShapes.prefix(8) {
                        print(String(format: "    %@ %7.2f ms %6.1f GFLOP/s %5d calls", shape.description.padding(toLength: 42, withPad: " ", startingAt: 0),
                                     totals.seconds * 1000, 2 * Double(totals.multiplyAdds) / max(totals.seconds, 1e-9) / 1e9, totals.calls))
                    }
                }
                print(String(format: "median_s=%.4f", latencies[0].median))
                return
            }
            let batchSize = configuration.batchSize
            let benchmark = StepBenchmark(configuration: configuration, batchSize: batchSize, communicator: world)
            // The sgemm reference is measured between the timed iterations (outside their
            // timing) and its median used: this VM's speed drifts over a run.
            var sgemmRates: [Double] = []
            let result = try benchmark.run(iterations: iterations, warmup: warmup, profile: true, overlap: !noOverlap,
                                           betweenIterations: stepOnly ? nil : { sgemmRates.append(StepBenchmark.sgemmGigaflops()) })
            let sgemm = sgemmRates.isEmpty ? 0 : sgemmRates.sorted()[sgemmRates.count / 2]
            // Every rank measures at once (rank 0's figures are printed), as every rank measures the
            // sgemm reference: an idle rank would spin in MPI on the other core meanwhile.
            let latency = stepOnly ? [] : benchmark.inferenceLatency().map { ($0.head, $0.median) }
            var peak = [StepBenchmark.peakResidentMiB]
            world.maximumOverRanks(&peak, "peak memory")
            guard world.rank == 0 else { return }
            let model = VAVLModel(configuration)
            print("precision: \(configuration.precision.rawValue)" + (configuration.precision == .bf16
                  ? " (products: \(bf16PathDescription); \(BLAS.bf16ShapeCount) shapes, implementations \(BLAS.bf16Implementations.joined(separator: ", ")))"
                  : " (products: OpenBLAS sgemm)") + "; cpu: \(MatrixEngine.cpuModel)")
            print(String(format: "model: %d parameters, dim %d, %d heads, blocks %d+%d+%d; batch %d over %d rank(s) × %d compute thread(s)",
                         model.store.parameterCount, configuration.dim, configuration.heads, configuration.acousticBlocks,
                         configuration.visualBlocks, configuration.sharedBlocks, batchSize, world.size, BLAS.threadCount))
            print("BLAS: \(BLAS.libraryPath) (OpenBLAS kernels \(BLAS.coreName)); " +
                  (BLAS.threading == .split ? "products split over the compute threads" : "OpenBLAS threading"))
            print("per phase (seconds per iteration, rank 0):")
            let sections = Dictionary(uniqueKeysWithValues: result.sections.map { ($0.0, $0.1) })
            for phase in Profiler.Section.phases { print(String(format: "  %-30@ %8.4f", phase.rawValue as NSString, sections[phase] ?? 0)) }
            print("per layer kind (seconds per iteration, rank 0; share of the step; threads kept busy;")
            print("  the rest is heads, losses, pooling, residuals):")
            let processorSections = Dictionary(uniqueKeysWithValues: result.processorSections.map { ($0.0, $0.1) })
            var accounted = 0.0, accountedProcessor = 0.0
            func line(_ name: String, _ wall: Double, _ processor: Double) {
                print(String(format: "  %-30@ %8.4f  %5.1f %%  %4.2f", name as NSString, wall, 100 * wall / result.median,
                             wall > 0 ? processor / wall : 0))
            }
            for kind in Profiler.Section.layerKinds {
                accounted += sections[kind] ?? 0
                accountedProcessor += processorSections[kind] ?? 0
                line(kind.rawValue, sections[kind] ?? 0, processorSections[kind] ?? 0)
            }
            let totalProcessor = result.busyThreads * result.seconds.reduce(0, +) / Double(result.seconds.count)
            let mean = result.seconds.reduce(0, +) / Double(result.seconds.count)
            line("other", max(0, mean - accounted), max(0, totalProcessor - accountedProcessor))
            print(String(format: "threads kept busy over the timed iterations: %.2f of %d", result.busyThreads, BLAS.threadCount))
            if BLAS.threadCount > 1 {
                print(String(format: "split products: %.3f CPU s per iteration waiting for the slowest piece (shares now %@)",
                             result.splitWaitingSeconds,
                             SplitBalance.currentShares.map { String(format: "%.2f", $0) }.joined(separator: "/") as NSString))
            }
            let gflops = result.flops / result.median / 1e9
            print(String(format: "useful work: %.1f GFLOP per iteration, %.1f GFLOP/s at the median", result.flops / 1e9, gflops))
            if sgemm > 0 {
                print(String(format: "machine sgemm (2048², %d thread(s)): %.1f GFLOP/s per rank; step reaches %.0f %% of %d × that",
                             BLAS.threadCount, sgemm, 100 * gflops / (sgemm * Double(world.size)), world.size))
                print(String(format: "  (median of %d measurements between the timed iterations, %.1f–%.1f)", sgemmRates.count,
                             sgemmRates.min() ?? 0, sgemmRates.max() ?? 0))
            }
            // The step's own products: their rate per thread and their share of the CPU time
            // bound what the step can reach (rank 0).
            let stepProcessor = result.busyThreads * result.seconds.reduce(0, +) / Double(result.seconds.count)
            let productRate = 2 * result.productMultiplyAdds / max(result.productSeconds, 1e-9) / 1e9
            // A rate per thread as a fraction of the machine's per-thread sgemm rate, if measured.
            func ofMachine(_ rate: Double, _ format: String) -> NSString {
                sgemm > 0 ? String(format: format, 100 * rate / (sgemm / Double(BLAS.threadCount))) as NSString : ""
            }
            print(String(format: "sgemm calls of the step: %.1f GFLOP at %.1f GFLOP/s per thread%@, %.0f %% of the step's CPU time",
                             2 * result.productMultiplyAdds / 1e9, productRate,
                             ofMachine(productRate, " (%.0f %% of the machine's per-thread rate)"),
                             100 * result.productSeconds / max(stepProcessor, 1e-9)))
            print("  by shape (transposes of A and B, ranges of m × n × k; CPU s per iteration, GFLOP/s per thread, calls):")
            for (shape, totals) in result.productShapes.prefix(12) {
                let rate = 2 * Double(totals.multiplyAdds) / max(totals.seconds, 1e-9) / 1e9
                print(String(format: "    %-42@ %7.3f s  %6.1f GFLOP/s%@  %6d calls", shape.description as NSString, totals.seconds, rate,
                             ofMachine(rate, " (%3.0f %%)"), totals.calls))
            }
            print(String(format: "kernel: %.3f CPU s and %.0f page faults per iteration (rank 0)", result.kernelSeconds, result.pageFaults))
            print(String(format: "allreduce: %.4f s per iteration (%.1f %% of the step)", result.allreduceSeconds,
                         100 * result.allreduceSeconds / result.median))
            for (head, seconds) in latency { print(String(format: "inference latency %@: %.2f ms per utterance", head as NSString, seconds * 1000)) }
            print(String(format: "peak RSS per rank: %.0f MiB", peak[0]))
            // Every measurement, for scripts that pool several runs (Scripts/bench.sh's rounds).
            print("iterations_s=" + result.seconds.map { String(format: "%.4f", $0) }.joined(separator: ","))
            if !sgemmRates.isEmpty { print("sgemm_gflops=" + sgemmRates.map { String(format: "%.2f", $0) }.joined(separator: ",")) }
            print(String(format: "min_s=%.4f", result.minimum))
            print(String(format: "median_s=%.4f", result.median))
        }
    }
}
