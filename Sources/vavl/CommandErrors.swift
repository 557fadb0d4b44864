import ArgumentParser
import Foundation

/// Runs the body of a single-process command. A `ValidationError` (a bad flag) keeps
/// ArgumentParser's message and usage; any other error — a file, a checkpoint, a corpus —
/// is one line `vavl: …` on standard error and exit status 1. (Commands that run under
/// mpirun end every rank instead: `Communicator.abortOnError`, `agreeOnSetUp`.)
func endingWithOneLine(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ValidationError {
        throw error
    } catch {
        FileHandle.standardError.write(Data("vavl: \(error)\n".utf8))
        throw ExitCode(1)
    }
}
