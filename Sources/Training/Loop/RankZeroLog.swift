import Foundation
#if canImport(Glibc)
import Glibc
#endif
import HDF5
import VAVLCore
import VAVLData

/// What rank 0 prints and records: the resolved configuration at start, progress per
/// iteration (a live line on a terminal, plain lines otherwise), a summary per epoch, and
/// JSON lines in `metrics.jsonl`. Every other rank is silent.
final class RankZeroLog {
    let enabled: Bool
    let quiet: Bool
    private var metrics: FileHandle?
    /// Why `metrics.jsonl` could not be opened (a planted link, say): reported at the first record.
    private var openFailure: String?
    private var lastLine = ""
    /// The run's learning rate (recorded with every iteration).
    private var learningRate: Float = 0
    /// Epochs of the run, and this epoch's running sums for the progress line.
    private var totalEpochs = 0
    private var runningLoss: [Phase: (sum: Double, count: Int)] = [:]
    private var runningSeconds = 0.0, runningIterations = 0, runningUtterances = 0, progressEpoch = -1
    private var metricsPath = "metrics.jsonl"
    private let started = Date()

    init(directory: String, enabled: Bool, quiet: Bool) {
        self.enabled = enabled
        self.quiet = quiet
        guard enabled else { return }
        let path = (directory as NSString).appendingPathComponent("metrics.jsonl")
        metricsPath = path
        do {
            metrics = try SafeFiles.openForAppending(path)
        } catch {
            openFailure = "\(error)"
        }
    }

    func say(_ text: String) {
        guard enabled && !quiet else { return }
        if !lastLine.isEmpty { print(""); lastLine = "" }
        print(text)
        fflush(stdout)
    }

    /// Called with a message when `metrics.jsonl` cannot be written (a full disk, say): the
    /// trainer brings the job down with it rather than train on without a record.
    var onWriteFailure: (String) -> Void = { _ in }

    /// ISO 8601 with milliseconds, UTC: the `time` of every record.
    private static let timestamp: ISO8601DateFormatter = {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }()

    func record(_ object: [String: Any]) {
        var object = object
        object["time"] = Self.timestamp.string(from: Date())
        if enabled, let openFailure {
            self.openFailure = nil
            onWriteFailure(openFailure)
        }
        guard enabled, let metrics,
              let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        do {
            try metrics.write(contentsOf: data + Data("\n".utf8))
        } catch {
            onWriteFailure("cannot write \(metricsPath): \(error.localizedDescription)")
        }
    }

    /// The run's first record: `start`, or `resume` with the point it continues from.
    /// `hosts`: every rank's host name, in rank order.
    func start(configuration: VAVLConfiguration, options: TrainingOptions, planner: BatchPlanner, corpus: Corpus, hosts: [String],
               resumedAt state: TrainingState? = nil) {
        guard enabled else { return }
        let worldSize = hosts.count
        learningRate = configuration.learningRate
        totalEpochs = configuration.epochs
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = (try? encoder.encode(configuration)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        say("config \(json)")
        say("corpus \(corpus.path): \(planner.utterances.count) training utterances, \(planner.batchesPerEpoch) global batches of \(planner.batchSize) per epoch, \(worldSize) rank(s)")
        let rates = planner.samplingRates()
        if !rates.isEmpty {
            say("balanced sampler, draws per epoch ÷ pool size: " +
                rates.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key.name) \(String(format: "%.2f", $0.value))" }
                .joined(separator: ", ") + " (> 1 = over-sampled)")
        }
        var entry: [String: Any] = ["type": state == nil ? "start" : "resume", "world_size": worldSize,
                                    "batches_per_epoch": planner.batchesPerEpoch, "vavl_version": VAVLVersion.current,
                                    "host": ProcessInfo.processInfo.hostName, "hosts": hosts,
                                    "git_commit": VAVLVersion.sourceCommit ?? NSNull(), "corpus": corpus.path,
                                    "config": (try? JSONSerialization.jsonObject(with: Data(json.utf8))) ?? [:]]
        if let state {
            entry["iteration"] = state.iteration
            entry["epoch"] = state.epoch
            entry["batch"] = state.samplerPosition
            entry["changes"] = options.resumeChanges.map(\.record)
        }
        record(entry)
    }

    func iteration(state: TrainingState, perEpoch: Int, losses: [Phase: PhaseLoss], seconds: Double, batch: GlobalBatch,
                   every: Int, live: Bool) {
        guard enabled else { return }
        var entry: [String: Any] = ["type": "iteration", "iteration": state.iteration - 1, "epoch": state.epoch,
                                    "seconds": seconds, "imbalance": batch.imbalance, "utterances": batch.rows.count,
                                    "lr": Double("\(learningRate)") ?? Double(learningRate)]
        for (phase, loss) in losses { entry["loss_\(phase.rawValue)"] = loss.total }
        record(entry)
        guard !quiet else { return }
        // Running means over this epoch (the last batch alone says little), and an ETA for the
        // epoch and for the whole run from the mean step time.
        if progressEpoch != state.epoch {
            (runningLoss, runningSeconds, runningIterations, progressEpoch) = ([:], 0, 0, state.epoch)
            runningUtterances = 0
        }
        for (phase, loss) in losses {
            let previous = runningLoss[phase] ?? (0, 0)
            runningLoss[phase] = (previous.sum + loss.total, previous.count + 1)
        }
        runningSeconds += seconds
        runningIterations += 1
        runningUtterances += batch.rows.count
        let step = state.samplerPosition
        let perIteration = runningSeconds / Double(runningIterations)
        let rate = Double(runningUtterances) / max(runningSeconds, 1e-9)
        let remainingEpoch = Double(perEpoch - step) * perIteration
        let remainingRun = Double(max(0, totalEpochs * perEpoch - state.epoch * perEpoch - step)) * perIteration
        let short = ["acoustic": "a", "visual": "v", "audio_visual": "av"]
        let phases = Phase.allCases.compactMap { phase in
            runningLoss[phase].map { "\(short[phase.rawValue] ?? phase.rawValue) \(String(format: "%.3f", $0.sum / Double($0.count)))" }
        }.joined(separator: " ")
        // Epochs and batches counted from 1 here and in the epoch lines (metrics.jsonl: from 0).
        let line = String(format: "ep %d/%d %d/%d loss %@ %.0f utt/s elapsed %@ ETA %@/%@", state.epoch + 1, max(totalEpochs, 1), step, perEpoch,
                          phases, rate, Self.duration(Date().timeIntervalSince(started)), Self.duration(remainingEpoch),
                          Self.duration(remainingRun))
        if live {
            // Never wider than the terminal: a wrapped live line fills the screen.
            let width = Self.terminalColumns() - 1
            let fitted = line.count > width ? String(line.prefix(max(width - 1, 1))) + "…" : line
            print("\r" + fitted.padding(toLength: max(fitted.count, min(lastLine.count, width)), withPad: " ", startingAt: 0), terminator: "")
            lastLine = fitted
            fflush(stdout)
        } else if every != Int.max && (step % max(every, 1) == 0 || step == perEpoch) {  // Int.max: --progress none
            print(line)
            fflush(stdout)
        }
    }

    /// "42s", "7m05s", "3h12m".
    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        if s < 60 { return "\(s)s" }
        if s < 3600 { return String(format: "%dm%02ds", s / 60, s % 60) }
        return String(format: "%dh%02dm", s / 3600, (s % 3600) / 60)
    }

    /// The terminal's width (80 when it cannot be read).
    static func terminalColumns() -> Int {
        var size = winsize()
        if ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
        return 80
    }

    func epoch(_ epoch: Int, losses: LossAccumulator, scores: [EvaluationHead: HeadScores], seconds: Double,
               state: TrainingState, task: PredictionTask) {
        guard enabled else { return }
        var entry: [String: Any] = ["type": "epoch", "epoch": epoch, "seconds": seconds,
                                    "utterances_per_second": Double(losses.utterances) / max(seconds, 1e-9),
                                    "best_epoch": state.bestEpoch]
        var parts: [String] = []
        for phase in Phase.allCases {
            if let mean = losses.mean(phase) {
                entry["train_loss_\(phase.rawValue)"] = mean
                parts.append("\(phase.rawValue) \(String(format: "%.4f", mean))")
            }
        }
        var development: [String] = []
        for head in EvaluationHead.allCases {
            guard let score = scores[head] else { continue }
            entry["dev_\(head.rawValue)"] = score.metrics
            let summary = score.metrics.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.4f", $0.value))" }
            development.append("\(head.rawValue): " + summary.joined(separator: " "))
        }
        record(entry)
        say(String(format: "epoch %d/%d done in %.1fs (%.1f utt/s); train loss ", epoch + 1, max(totalEpochs, 1), seconds,
                   Double(losses.utterances) / max(seconds, 1e-9)) + parts.joined(separator: ", "))
        for line in development { say("  dev \(line)") }
        if state.bestEpoch == epoch { say("  new best development loss \(String(format: "%.4f", state.bestLoss))") }
    }

    func finish(state: TrainingState) {
        guard enabled else { return }
        record(["type": "end", "iterations_completed": state.iteration, "epochs_completed": state.epoch,
                "best_epoch": state.bestEpoch, "seconds": Date().timeIntervalSince(started)])
        say("finished: \(state.iteration) iterations, \(state.epoch) epoch(s), best development epoch \(state.bestEpoch)")
    }
}
