import Foundation

/// The trainer's version: printed by `vavl --version` and `vavl info`. Checkpoint and corpus
/// files carry their own format versions (DESIGN §5, §6).
public enum VAVLVersion {
    public static let current = "0.10.0"

    /// The git commit of the source checkout this binary sits in (`.build/…/vavl` inside a
    /// clone), read from its `.git` folder when the program starts; nil for a binary
    /// outside a checkout. It names the sources, not their uncommitted changes.
    public static let sourceCommit: String? = {
        guard let executable = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else { return nil }
        var folder = URL(fileURLWithPath: executable).deletingLastPathComponent()
        for _ in 0..<8 {
            var git = folder.appendingPathComponent(".git")
            // A worktree's or submodule's .git is a file naming the real folder.
            if let link = try? String(contentsOf: git, encoding: .utf8), link.hasPrefix("gitdir: ") {
                let target = link.dropFirst(8).trimmingCharacters(in: .whitespacesAndNewlines)
                git = URL(fileURLWithPath: target, relativeTo: folder).standardizedFileURL
            }
            if let head = try? String(contentsOf: git.appendingPathComponent("HEAD"), encoding: .utf8) {
                return commit(head: head.trimmingCharacters(in: .whitespacesAndNewlines), git: git)
            }
            folder.deleteLastPathComponent()
        }
        return nil
    }()

    /// HEAD's commit: a detached hash as it is, a branch through its ref file or packed-refs.
    private static func commit(head: String, git: URL) -> String? {
        func isHash(_ text: String) -> Bool { text.count == 40 && text.allSatisfy(\.isHexDigit) }
        if isHash(head) { return head }
        guard head.hasPrefix("ref: ") else { return nil }
        let reference = String(head.dropFirst(5))
        guard !reference.contains("..") else { return nil }
        if let hash = try? String(contentsOf: git.appendingPathComponent(reference), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines), isHash(hash) { return hash }
        let packed = (try? String(contentsOf: git.appendingPathComponent("packed-refs"), encoding: .utf8)) ?? ""
        for line in packed.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2, parts[1] == reference, isHash(String(parts[0])) { return String(parts[0]) }
        }
        return nil
    }
}
