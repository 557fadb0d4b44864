/// The trainer's version: printed by `vavl --version` and `vavl info`. Checkpoint and corpus
/// files carry their own format versions (DESIGN §5, §6).
public enum VAVLVersion {
    public static let current = "0.10.0"
}
