import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Files written next to a user's outputs, made so that nothing planted there can redirect
/// them (docs/DESIGN.md §6, "writing files"): temporary files are created exclusively under
/// a name nobody can predict, logs are appended without following a symbolic link, and an
/// output that exists must be a regular file.
public enum SafeFiles {
    /// A problem with a file the program was about to write, naming it.
    public struct Refusal: Error, CustomStringConvertible {
        public var path: String
        public var problem: String
        public var description: String { "\(path): \(problem)" }
    }

    /// Creates a new empty temporary file for `target` in the same folder (so a rename can
    /// replace `target` atomically) and returns its path. `O_CREAT | O_EXCL | O_NOFOLLOW`: a
    /// file or a symbolic link already at the name is never opened, and the name carries the
    /// pid and random bits. The corresponding C function is `open(2)`. `willCreate` is told
    /// each name before it is tried and `notCreated` each name that was not created by us, so
    /// that a signal handler that removes temporary files knows the file as soon as it exists.
    public static func createTemporary(for target: String, hidden: Bool = false,
                                       willCreate: (String) -> Void = { _ in }, notCreated: (String) -> Void = { _ in }) throws -> String {
        let url = URL(fileURLWithPath: target)
        for _ in 0..<8 {
            let name = (hidden ? "." : "") + url.lastPathComponent + ".partial-\(getpid())-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
            let path = url.deletingLastPathComponent().appendingPathComponent(name).path
            willCreate(path)
            let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
            if descriptor >= 0 {
                close(descriptor)
                return path
            }
            let failure = errno
            notCreated(path)
            errno = failure
            if errno != EEXIST { throw Refusal(path: path, problem: "cannot create a temporary file: \(String(cString: strerror(errno)))") }
        }
        throw Refusal(path: target, problem: "cannot find a free temporary name next to it")
    }

    /// Refuses an output path that exists and is not a regular file (a device, a FIFO, a
    /// folder, or a symbolic link to anything).
    public static func requireReplaceable(_ path: String) throws {
        var status = stat()
        guard lstat(path, &status) == 0 else { return }  // absent: fine
        if (status.st_mode & S_IFMT) != S_IFREG {
            throw Refusal(path: path, problem: "exists and is not a regular file (a link, device, FIFO or folder): refusing to replace it")
        }
    }

    /// Writes `contents` to `path` as a whole, atomically: refused if `path` exists and is
    /// not a regular file (``requireReplaceable(_:)``); written to an exclusive temporary
    /// file beside it (``createTemporary(for:hidden:)``), then renamed over it, so a reader
    /// never sees half a file and nothing is left behind on an error or an interrupt
    /// (``TemporaryFiles``). Every whole-file output of the program goes through here.
    public static func replace(_ path: String, with contents: Data) throws {
        try requireReplaceable(path)
        // Tracked from before it exists until it is renamed or removed (`TemporaryFiles`).
        let temporary = try createTemporary(for: path, willCreate: TemporaryFiles.track, notCreated: TemporaryFiles.untrack)
        defer { TemporaryFiles.untrack(temporary) }
        do {
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: temporary))
            defer { try? handle.close() }
            try handle.write(contentsOf: contents)
            try handle.synchronize()
        } catch {
            unlink(temporary)
            throw Refusal(path: path, problem: "cannot write: \(error.localizedDescription)")
        }
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw Refusal(path: path, problem: "cannot replace: \(reason)")
        }
    }

    /// Opens `path` for appending, creating it if absent, without following a symbolic link
    /// and refusing anything but a regular file. The corresponding C function is `open(2)`.
    public static func openForAppending(_ path: String) throws -> FileHandle {
        let descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw Refusal(path: path, problem: errno == ELOOP ? "is a symbolic link: refusing to write through it"
                                                             : "cannot open for appending: \(String(cString: strerror(errno)))")
        }
        var status = stat()
        guard fstat(descriptor, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else {
            close(descriptor)
            throw Refusal(path: path, problem: "is not a regular file: refusing to append to it")
        }
        return FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
    }
}
