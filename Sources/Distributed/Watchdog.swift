import Foundation
#if canImport(Glibc)
import Glibc
#endif

// MARK: - What the main thread is doing

/// A thread-safe label of what this rank's main thread is doing right now ("MPI_Allreduce of
/// 96 Double statistics (collective #812)", "iteration 40: computing Algorithm 1"), set by
/// ``MPICollectives`` and the training loop and read by the ``Watchdog`` when it gives up.
public enum CurrentOperation {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var current = "starting"

    /// The current label.
    public static var label: String {
        lock.lock()
        defer { lock.unlock() }
        return current
    }

    /// Replaces the label.
    public static func set(_ label: String) {
        lock.lock()
        current = label
        lock.unlock()
    }

    /// Replaces the label and returns the previous one, to be restored with ``set(_:)``
    /// when a nested operation (a collective inside a step) ends.
    public static func swap(_ label: String) -> String {
        lock.lock()
        defer { lock.unlock() }
        let previous = current
        current = label
        return previous
    }

    /// The label without waiting: the watchdog must not block behind a main thread that
    /// stalled while holding the lock.
    static func peek() -> String {
        guard lock.try() else { return "(the label is being changed)" }
        defer { lock.unlock() }
        return current
    }
}

// MARK: - The watchdog

/// Stall detection on every rank (`--stall-factor`, `--stall-minimum-seconds`).
///
/// A rank that stalls — a frozen node, a rank stuck in I/O, a network that stops passing
/// packets — leaves every other rank waiting in the next collective, and an MPI job in that
/// state hangs until its allocation ends. The watchdog is a thread that times each training
/// step against the median of the recent ones; when a step runs past
///
///     limit = max(minimumSeconds, factor × median of the last `window` steps)
///
/// it prints which rank stalled, in which step and in which operation (``CurrentOperation``:
/// usually the collective it waits in), and ends the process with `_exit(75)`. mpirun sees a
/// rank exit without `MPI_Finalize` and tears the whole job down. The thread never calls MPI
/// (MPI runs `MPI_THREAD_FUNNELED`: only the main thread may).
///
/// Steps without a comparable history get more room: the first `warmup` steps of a run (no
/// median yet) may take `factor × minimumSeconds` (unwatched if that is 0), and the first step
/// of every epoch `factor × limit`, because the other ranks wait in it for rank 0's checkpoint
/// writes, whose duration depends on the file system, not on the step.
///
/// The work between epochs (development evaluation, checkpoint writes, the final barrier) is
/// timed the same way against its own history: the median of the earlier epoch ends, and
/// `factor × minimumSeconds` for the first.
public final class Watchdog: @unchecked Sendable {
    /// The process exit status of a detected stall (EX_TEMPFAIL: worth a retry, e.g. a requeue).
    public static let exitCode: Int32 = 75

    public struct Settings: Sendable, Equatable {
        /// A step may take this many times the recent median; 0 disables the watchdog.
        public var factor: Double
        /// No step is declared stalled before this many seconds; 0 = no floor.
        public var minimumSeconds: Double
        /// Completed steps kept for the median.
        public var window = 50
        /// Completed steps before the median is trusted.
        public var warmup = 3
        /// How often the thread looks (seconds).
        public var pollSeconds = 0.25

        public init(factor: Double, minimumSeconds: Double) {
            self.factor = factor
            self.minimumSeconds = minimumSeconds
        }

        public var enabled: Bool { factor > 0 }

        /// The time a step may take, or nil if it is not watched.
        /// - Parameters:
        ///   - median: the median of recent steps (nil during warm-up).
        ///   - afterPause: the first step after an epoch end.
        public func limit(median: Double?, afterPause: Bool) -> Double? {
            guard enabled else { return nil }
            guard let median else {
                // No history to compare with: only the floor, with room for a slow start.
                return minimumSeconds > 0 ? factor * minimumSeconds : nil
            }
            let limit = max(minimumSeconds, factor * median)
            return afterPause ? factor * limit : limit
        }
    }

    /// What is timed: a training step, or the work between epochs.
    public enum Activity: String, Sendable {
        case step
        case epochEnd = "end of epoch"
    }

    public let rank: Int
    public let size: Int
    public let settings: Settings

    private let lock = NSLock()
    private var stepStart: UInt64?
    private var stepDescription = ""
    private var stepAfterPause = false
    private var activity = Activity.step
    private var durations: [Activity: [Double]] = [:]
    private var stopped = false
    private var thread: Thread?

    public init(rank: Int, size: Int, settings: Settings) {
        self.rank = rank
        self.size = size
        self.settings = settings
    }

    /// Starts the watchdog thread, or returns nil when `settings.factor` is 0.
    public static func start(rank: Int, size: Int, settings: Settings) -> Watchdog? {
        guard settings.enabled else { return nil }
        let watchdog = Watchdog(rank: rank, size: size, settings: settings)
        watchdog.start()
        return watchdog
    }

    /// Starts the watching thread (once).
    public func start() {
        lock.lock()
        defer { lock.unlock() }
        guard thread == nil, settings.enabled else { return }
        let thread = Thread { [self] in watch() }
        thread.name = "vavl-watchdog"
        self.thread = thread
        thread.start()
    }

    /// Stops the thread; steps are no longer timed.
    public func stop() {
        lock.lock()
        stopped = true
        stepStart = nil
        lock.unlock()
    }

    /// A step begins now. `description` names it in the message ("step 7/14 of epoch 2").
    public func beginStep(_ description: String, afterPause: Bool = false) {
        begin(.step, description, label: description + ": reading the batch", afterPause: afterPause)
    }

    /// The work between epochs begins now (evaluation, checkpoints; the final barrier).
    public func beginEpochEnd(_ description: String) {
        begin(.epochEnd, description, label: description, afterPause: false)
    }

    private func begin(_ activity: Activity, _ description: String, label: String, afterPause: Bool) {
        let now = DispatchTimeCounter.now()
        CurrentOperation.set(label)
        lock.lock()
        stepStart = now
        stepDescription = description
        stepAfterPause = afterPause
        self.activity = activity
        lock.unlock()
    }

    /// What began last has ended; its duration joins its median (the first step of an epoch
    /// excepted: it includes waiting for rank 0's checkpoint writes).
    public func end() {
        let now = DispatchTimeCounter.now()
        lock.lock()
        if let start = stepStart, !stepAfterPause {
            durations[activity, default: []].append(Double(now - start) / 1e9)
            if durations[activity]!.count > settings.window { durations[activity]!.removeFirst() }
        }
        stepStart = nil
        lock.unlock()
        CurrentOperation.set("between steps")
    }

    /// The step that began last has ended.
    public func endStep() { end() }

    /// The median of the recent step durations, or nil during warm-up.
    public var median: Double? {
        lock.lock()
        defer { lock.unlock() }
        return medianLocked(.step)
    }

    /// Steps need `warmup` samples; epoch ends are few, one is enough.
    private func medianLocked(_ activity: Activity) -> Double? {
        let durations = self.durations[activity] ?? []
        guard durations.count >= (activity == .step ? max(settings.warmup, 1) : 1) else { return nil }
        let sorted = durations.sorted()
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }

    // MARK: - The thread

    private func watch() {
        let pause = useconds_t(max(settings.pollSeconds, 0.01) * 1e6)
        while true {
            usleep(pause)
            lock.lock()
            if stopped {
                lock.unlock()
                return
            }
            guard let start = stepStart else {
                lock.unlock()
                continue
            }
            let elapsed = Double(DispatchTimeCounter.now() - start) / 1e9
            let activity = self.activity
            let median = medianLocked(activity)
            let limit = settings.limit(median: median, afterPause: stepAfterPause)
            let description = stepDescription
            let afterPause = stepAfterPause
            lock.unlock()
            if let limit, elapsed > limit {
                fail(activity, description: description, elapsed: elapsed, limit: limit, median: median, afterPause: afterPause)
            }
        }
    }

    /// Prints the diagnosis and ends the process. No MPI, no locks that the stalled main
    /// thread may hold (stdout is flushed only if it is free).
    private func fail(_ activity: Activity, description: String, elapsed: Double, limit: Double, median: Double?,
                      afterPause: Bool) -> Never {
        let seconds = { (value: Double) in String(format: "%.1f s", value) }
        let basis: String
        if let median {
            basis = String(format: "max(--stall-minimum-seconds %g, --stall-factor %g × the median %@ %.3f s)",
                           settings.minimumSeconds, settings.factor, activity.rawValue, median)
                + (afterPause ? String(format: " × %g for the first step of an epoch", settings.factor) : "")
        } else {
            basis = String(format: "--stall-factor %g × --stall-minimum-seconds %g before the median is known",
                           settings.factor, settings.minimumSeconds)
        }
        let prefix = size > 1 ? "vavl: rank \(rank) of \(size): " : "vavl: "
        let message = prefix + "stalled: \(description) has run \(seconds(elapsed)), past the limit of \(seconds(limit)) = \(basis); "
            + "this rank waits in: \(CurrentOperation.peek()). "
            + "Aborting the job (exit \(Watchdog.exitCode)) instead of hanging: a rank that stalls or dies leaves the others waiting in the same collective.\n"
        if ftrylockfile(stdout) == 0 {
            fflush_unlocked(stdout)
            funlockfile(stdout)
        }
        message.utf8CString.withUnsafeBufferPointer { bytes in
            var offset = 0
            let count = bytes.count - 1  // without the terminating NUL
            while offset < count {
                let written = write(2, bytes.baseAddress! + offset, count - offset)
                if written <= 0 { break }
                offset += written
            }
        }
        _exit(Watchdog.exitCode)
    }
}
