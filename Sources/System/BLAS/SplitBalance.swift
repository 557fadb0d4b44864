import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// How `BLAS.sgemm` shares a split product among its threads.
///
/// With cores of steady speed an even split is right. On virtual machines (this project's
/// CI and development VMs) each virtual CPU's speed drifts by ±20 % over a tenth of a
/// second, independently of the other: with even splits the faster thread waited for the
/// slower one for 5 % of a 2-thread training step (measured, `vavl bench`'s "waiting in
/// split products"). So the split learns: participant 0 is the calling thread, the others
/// Dispatch's workers (which the kernel keeps on the other cores); each call measures every
/// participant's rate, its share of the work over the time from the call's start to its
/// end (a late wake-up counts as slowness), and the next call's shares follow the rates,
/// smoothed and kept within ½…1½ of the even share. Boundaries stay on multiples of
/// `BLAS.splitAlignment`, where the kernels' tiles start anyway, so every element of C is
/// computed the same way whatever the shares (tested): only the timing adapts.
/// `VAVL_SPLIT_BALANCE=even` turns the adaptation off. Each call keeps its own claims and
/// finish times, and the shares are read and written under a lock, so concurrent callers
/// cannot disturb each other (the nested products of the attention workers do not split).
public enum SplitBalance {
    /// Weight of the last call's rates in the next shares.
    static let smoothing = 0.5

    /// The shares of the next split product and the idle time so far, behind one lock.
    private struct State {
        var shares: [Double] = [1]
        var waitingSeconds = 0.0
    }
    private static let state = Mutex(State())

    /// Whether shares adapt; `VAVL_SPLIT_BALANCE=even` keeps even splits (for comparison),
    /// and tests turn it off to force shares.
    nonisolated(unsafe) public static var adapts: Bool = {
        getenv("VAVL_SPLIT_BALANCE").map { String(cString: $0).lowercased() == "even" } != true
    }()

    /// CPU seconds participants spent idle, waiting for the last one to finish, summed over
    /// split products since the last ``resetWaiting()``.
    public static var waitingSeconds: Double { state.withLock { $0.waitingSeconds } }

    public static func resetWaiting() { state.withLock { $0.waitingSeconds = 0 } }

    /// Starts every participant on an even share.
    public static func reset(pieces: Int) {
        state.withLock { $0.shares = [Double](repeating: 1 / Double(pieces), count: pieces) }
    }

    /// Sets the shares of the next products (normalised); with ``adapts`` off they stay.
    public static func setShares(_ newShares: [Double]) {
        let total = newShares.reduce(0, +)
        state.withLock { $0.shares = newShares.map { $0 / total } }
    }

    public static var currentShares: [Double] { state.withLock { $0.shares } }

    @usableFromInline static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }

    /// Piece boundaries along `extent` for `shares`: `shares.count + 1` values from 0 to
    /// `extent`, inner ones on multiples of `BLAS.splitAlignment`.
    static func boundaries(shares: [Double], extent: Int) -> [Int] {
        var bounds = [0]
        var cumulative = 0.0
        for piece in 0..<(shares.count - 1) {
            cumulative += shares[piece]
            let aligned = Int((cumulative * Double(extent) / Double(BLAS.splitAlignment)).rounded()) * BLAS.splitAlignment
            bounds.append(min(extent, max(bounds[piece], aligned)))
        }
        bounds.append(extent)
        return bounds
    }

    /// Starts a split product of `pieces` pieces along `extent`, on the current shares
    /// (even ones when the piece count changed).
    @usableFromInline static func beginCall(pieces: Int, extent: Int) -> SplitCall {
        let shares = state.withLock { state -> [Double] in
            if state.shares.count != pieces { state.shares = [Double](repeating: 1 / Double(pieces), count: pieces) }
            return state.shares
        }
        return SplitCall(bounds: boundaries(shares: shares, extent: extent))
    }

    /// After `call`: adds its idle time, and moves the shares toward its measured rates.
    @usableFromInline static func endCall(_ call: SplitCall) {
        let pieces = call.pieces
        var last = 0.0
        for piece in 0..<pieces { last = max(last, call.finishTimes[piece]) }
        let waiting = (0..<pieces).reduce(0.0) { $0 + last - call.finishTimes[$1] }
        let elapsed = (0..<pieces).map { call.finishTimes[$0] - call.start }
        let adapts = self.adapts
        state.withLock { state in
            state.waitingSeconds += waiting
            if adapts && state.shares.count == pieces {
                state.shares = adaptedShares(state.shares, bounds: call.bounds, elapsed: elapsed)
            }
        }
    }

    /// The next shares after a call whose piece `i` covered `bounds[i]..<bounds[i + 1]` and
    /// finished `elapsed[i]` seconds after the call started: the rates (extent per second)
    /// blended into `current` by ``smoothing``, each within ½…1½ of the even share.
    static func adaptedShares(_ current: [Double], bounds: [Int], elapsed: [Double]) -> [Double] {
        let pieces = current.count
        var rates = (0..<pieces).map { Double(bounds[$0 + 1] - bounds[$0]) / max(elapsed[$0], 1e-9) }
        if pieces > 2 {
            // Which worker takes which piece changes from call to call; only the calling
            // thread is a stable identity, so the workers keep equal shares among themselves.
            let workers = rates[1...].reduce(0, +) / Double(pieces - 1)
            for piece in 1..<pieces { rates[piece] = workers }
        }
        let total = rates.reduce(0, +)
        guard total > 0, rates.allSatisfy({ $0 > 0 }) else { return current }
        let even = 1 / Double(pieces)
        let next = (0..<pieces).map { piece in
            min(1.5 * even, max(0.5 * even, (1 - smoothing) * current[piece] + smoothing * rates[piece] / total))
        }
        let sum = next.reduce(0, +)
        return next.map { $0 / sum }
    }
}

/// One split product in flight: its boundaries, which participant holds which piece, and
/// when each piece finished.
@usableFromInline final class SplitCall {
    @usableFromInline let bounds: [Int]
    let start: Double
    let finishTimes: UnsafeMutablePointer<Double>
    private let callerClaimed = Atomic<Bool>(false)
    private let nextPiece = Atomic<Int>(1)

    var pieces: Int { bounds.count - 1 }

    init(bounds: [Int]) {
        self.bounds = bounds
        finishTimes = .allocate(capacity: bounds.count - 1)
        finishTimes.initialize(repeating: 0, count: bounds.count - 1)
        start = SplitBalance.now()
    }

    deinit { finishTimes.deallocate() }

    /// The piece a participant computes: 0 for the calling thread, 1… for the others in
    /// arrival order (if Dispatch runs several iterations on one thread, it takes the next
    /// free piece; exactly `pieces` claims are made, so every piece is taken once).
    @usableFromInline func claimPiece(onCallingThread: Bool) -> Int {
        if onCallingThread, callerClaimed.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged {
            return 0
        }
        let piece = nextPiece.wrappingAdd(1, ordering: .acquiringAndReleasing).oldValue
        if piece < pieces { return piece }
        // The calling thread never came to claim piece 0 (the workers took every iteration).
        callerClaimed.store(true, ordering: .relaxed)
        return 0
    }

    @usableFromInline func finished(piece: Int) { finishTimes[piece] = SplitBalance.now() }
}
