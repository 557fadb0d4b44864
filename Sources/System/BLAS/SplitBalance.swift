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
/// `VAVL_SPLIT_BALANCE=even` turns the adaptation off.
public enum SplitBalance {
    /// Weight of the last call's rates in the next shares.
    static let smoothing = 0.5
    /// Largest pieces supported (threads per rank).
    static let maximumPieces = 64

    nonisolated(unsafe) private static var shares: [Double] = [1]
    nonisolated(unsafe) private static var finishTimes = UnsafeMutablePointer<Double>.allocate(capacity: maximumPieces)
    /// Whether shares adapt; `VAVL_SPLIT_BALANCE=even` keeps even splits (for comparison),
    /// and tests turn it off to force shares.
    nonisolated(unsafe) public static var adapts: Bool = {
        getenv("VAVL_SPLIT_BALANCE").map { String(cString: $0).lowercased() == "even" } != true
    }()
    /// CPU seconds participants spent idle, waiting for the last one to finish, summed over
    /// split products since the last ``resetWaiting()``.
    nonisolated(unsafe) public private(set) static var waitingSeconds = 0.0
    private static let callerClaimed = Atomic<Bool>(false)
    private static let nextRole = Atomic<Int>(1)

    /// Starts every participant on an even share (also when the thread count changes).
    public static func reset(pieces: Int) {
        shares = [Double](repeating: 1 / Double(pieces), count: pieces)
    }

    /// Sets the shares of the next products (normalised); with ``adapts`` off they stay.
    public static func setShares(_ newShares: [Double]) {
        let total = newShares.reduce(0, +)
        shares = newShares.map { $0 / total }
    }

    public static var currentShares: [Double] { shares }

    public static func resetWaiting() { waitingSeconds = 0 }

    @usableFromInline static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }

    /// Piece boundaries along `extent` for the current shares: `pieces + 1` values from 0 to
    /// `extent`, inner ones on multiples of `BLAS.splitAlignment`.
    @usableFromInline static func boundaries(pieces: Int, extent: Int) -> [Int] {
        if shares.count != pieces { reset(pieces: pieces) }
        var bounds = [0]
        var cumulative = 0.0
        for piece in 0..<(pieces - 1) {
            cumulative += shares[piece]
            let aligned = Int((cumulative * Double(extent) / Double(BLAS.splitAlignment)).rounded()) * BLAS.splitAlignment
            bounds.append(min(extent, max(bounds[piece], aligned)))
        }
        bounds.append(extent)
        return bounds
    }

    /// Before a split call: no participant holds a role yet.
    @usableFromInline static func beginCall() {
        callerClaimed.store(false, ordering: .relaxed)
        nextRole.store(1, ordering: .relaxed)
    }

    /// The piece a participant computes: 0 for the calling thread, 1… for the others in
    /// arrival order (if Dispatch runs several iterations on one thread, it takes the next
    /// free piece; exactly `pieces` claims are made, so every piece is taken once).
    @usableFromInline static func claimPiece(onCallingThread: Bool, pieces: Int) -> Int {
        if onCallingThread, callerClaimed.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged {
            return 0
        }
        let role = nextRole.wrappingAdd(1, ordering: .acquiringAndReleasing).oldValue
        if role < pieces { return role }
        // The calling thread never came to claim piece 0 (the workers took every iteration).
        callerClaimed.store(true, ordering: .relaxed)
        return 0
    }

    @usableFromInline static func finished(piece: Int) { finishTimes[piece] = now() }

    /// After a split call that started at `start` with `bounds`: the idle time, and the next
    /// shares from the measured rates.
    @usableFromInline static func endCall(start: Double, bounds: [Int]) {
        let pieces = bounds.count - 1
        var last = 0.0
        for piece in 0..<pieces { last = max(last, finishTimes[piece]) }
        for piece in 0..<pieces { waitingSeconds += last - finishTimes[piece] }
        guard adapts else { return }
        shares = adaptedShares(shares, bounds: bounds, elapsed: (0..<pieces).map { finishTimes[$0] - start })
    }

    /// The next shares after a call whose piece `i` covered `bounds[i]..<bounds[i + 1]` and
    /// finished `elapsed[i]` seconds after the call started: the rates (extent per second)
    /// blended into `current` by ``smoothing``, each within ½…1½ of the even share.
    static func adaptedShares(_ current: [Double], bounds: [Int], elapsed: [Double]) -> [Double] {
        let pieces = current.count
        let rates = (0..<pieces).map { Double(bounds[$0 + 1] - bounds[$0]) / max(elapsed[$0], 1e-9) }
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
