import Foundation

/// A test hook for the fault tests in Scripts/test.sh (Cluster/README.md, "Faults").
///
/// With `VAVL_TEST_CRASH_DURING_CHECKPOINT=1` in the environment, the process that writes a
/// checkpoint which *replaces* an existing file (the second `checkpoint-last.h5`, say) dies
/// with `_exit(86)` while the new file is half written: the temporary file is cut to half its
/// size and left behind, exactly what a `kill -9` or a node crash in the middle of the write
/// leaves. The previous checkpoint must still load, and `--resume` must continue from it.
/// Unset (always, outside tests), the hook does nothing.
enum CheckpointFaultInjection {
    static let exitCode: Int32 = 86
    static let enabled = ProcessInfo.processInfo.environment["VAVL_TEST_CRASH_DURING_CHECKPOINT"] == "1"

    /// Dies half-way through replacing `path` if the hook is on and `path` exists.
    static func crashIfReplacing(_ path: String, temporary: String) {
        guard enabled, access(path, F_OK) == 0 else { return }
        var status = stat()
        let size = stat(temporary, &status) == 0 ? Int64(status.st_size) : 0
        _ = truncate(temporary, off_t(size / 2))
        let message = "vavl: VAVL_TEST_CRASH_DURING_CHECKPOINT: dying while \(path) is half written (\(size / 2) of \(size) bytes in \(temporary))\n"
        FileHandle.standardError.write(Data(message.utf8))
        _exit(exitCode)
    }
}
