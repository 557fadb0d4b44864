import Foundation

/// Serialises HDF5 calls across threads. The HDF5 C library keeps global state, so two
/// threads must never be inside it at once: the corpus reader may run on a prefetch thread
/// while the main thread writes a checkpoint. Code that calls HDF5 while another thread may
/// be reading wraps its calls in ``HDF5Lock/withLock(_:)``.
public enum HDF5Lock {
    private static let lock = NSRecursiveLock()

    /// Runs `body` holding the process-wide HDF5 lock (re-entrant).
    public static func withLock<R>(_ body: () throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }
}
