import ArgumentParser
import BLAS
import CMachine
import HDF5
import MPI
import VAVLTraining

@main
struct VAVLCommand: ParsableCommand {
    static func main() {
        // `train` takes SIGUSR1/SIGTERM/SIGINT as "stop after this iteration" from its very
        // first instruction: a signal during start-up (argument parsing, MPI, loading) is
        // kept and honoured after the first iteration rather than killing the rank. Other
        // commands keep the signals' default actions, after removing the temporary file of an
        // unfinished output (`TemporaryFiles`).
        // The re-execution of `ensureFastKernels` holds the signals blocked through the exec;
        // the new image unblocks them here, after its handlers are in place.
        if CommandLine.arguments.dropFirst().first == "train" {
            vavl_install_stop_signals()
        } else {
            vavl_release_stop_signals()
            TemporaryFiles.removeOnInterrupt()
        }
        #if VAVL_REQUIRES_AVX2
        vavl_require_avx2_fma()
        #endif
        BLAS.ensureFastKernels()
        BLAS.useDefaultThreadCount()
        Self.main(nil)
    }

    static let configuration = CommandConfiguration(
        commandName: "vavl",
        abstract: "Distributed data-parallel trainer for VAVL audio-visual emotion recognition.",
        version: "vavl \(VAVLVersion.current)",
        subcommands: [InfoCommand.self, CorpusCommand.self, TrainCommand.self, EvaluateCommand.self, PredictCommand.self, ExportCommand.self, BenchCommand.self, SummaryCommand.self, ExperimentCommand.self, ReportCommand.self, PlotCommand.self]
    )
}

/// Prints what this process sees of MPI and OpenBLAS; handy under `mpirun` to check a launch.
struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info", abstract: "Show the MPI rank layout, the CPU, and the fp32 and bf16 product paths of this launch.")

    func run() throws {
        let world = Communicator.world
        print("rank \(world.rank) of \(world.size), compute threads \(BLAS.threadCount) (\(BLAS.threading == .split ? "split products, OpenBLAS single-threaded" : "OpenBLAS threading")), kernels \(BLAS.coreName)")
        if world.rank == 0 {
            print("cpu: \(MatrixEngine.cpuModel)")
            print("fp32 products: OpenBLAS (\(BLAS.coreName) kernels)")
            print("bf16 products: \(bf16PathDescription)")
        }
    }
}

/// The bf16 product path in use and why, for `info` and `bench`.
var bf16PathDescription: String {
    switch MatrixEngine.path {
    case .amx, .avx512: return "\(MatrixEngine.path.rawValue) (\(MatrixEngine.pathReason))"
    case .emulated: return "emulated: bf16-rounded operands, OpenBLAS fp32 products (\(MatrixEngine.pathReason))"
    }
}
