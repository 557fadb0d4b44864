import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The temporary files the program is writing (a corpus, a whole-file output before its
/// rename), removed when SIGINT, SIGTERM or SIGHUP ends the process: an interrupted
/// command leaves neither its output nor a partial file behind.
///
/// A writer tracks its temporary file before creating it (``SafeFiles/createTemporary(for:hidden:willCreate:notCreated:)``
/// announces each name) and stops tracking it once it is renamed or removed; a signal in
/// between finds the name already tracked. The paths are kept as C strings in fixed slots,
/// so that the handler can unlink them without allocating or locking.
public enum TemporaryFiles {
    private static let slotCount = 16
    nonisolated(unsafe) private static let slots: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> = {
        let slots = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: slotCount)
        slots.initialize(repeating: nil, count: slotCount)
        return slots
    }()
    private static let lock = NSLock()

    /// Installs handlers for SIGINT, SIGTERM and SIGHUP that remove the tracked files and then
    /// let the signal end the process as it would have. Every command but `train` (whose
    /// signals ask for a graceful stop) calls it at start-up.
    public static func removeOnInterrupt() {
        _ = slots
        for signalNumber in [SIGINT, SIGTERM, SIGHUP] {
            signal(signalNumber) { received in
                for slot in 0..<TemporaryFiles.slotCount {
                    if let pointer = TemporaryFiles.slots[slot] { unlink(pointer) }
                }
                signal(received, SIG_DFL)
                raise(received)
            }
        }
    }

    /// Tracks `path` (up to 16 at once; beyond that a file is only removed by its writer).
    public static func track(_ path: String) {
        lock.lock(); defer { lock.unlock() }
        for slot in 0..<slotCount where slots[slot] == nil {
            slots[slot] = strdup(path)
            return
        }
    }

    /// Stops tracking `path`.
    public static func untrack(_ path: String) {
        lock.lock(); defer { lock.unlock() }
        for slot in 0..<slotCount {
            if let pointer = slots[slot], String(cString: pointer) == path {
                slots[slot] = nil
                free(pointer)
            }
        }
    }

    /// The tracked paths (tests).
    public static var tracked: [String] {
        lock.lock(); defer { lock.unlock() }
        return (0..<slotCount).compactMap { slots[$0].map { String(cString: $0) } }
    }
}
