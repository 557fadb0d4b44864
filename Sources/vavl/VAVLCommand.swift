import ArgumentParser
import BLAS
import CShims
import HDF5
import MPI

@main
struct VAVLCommand: ParsableCommand {
    static func main() {
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
        subcommands: [InfoCommand.self, CorpusCommand.self, TrainCommand.self, EvaluateCommand.self, PredictCommand.self, ExportCommand.self, BenchCommand.self, SummaryCommand.self, ExperimentCommand.self, ReportCommand.self]
    )
}

/// Prints what this process sees of MPI and OpenBLAS; handy under `mpirun` to check a launch.
struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info", abstract: "Show the MPI rank layout and BLAS threads of this launch.")

    func run() throws {
        let world = Communicator.world
        print("rank \(world.rank) of \(world.size), compute threads \(BLAS.threadCount) (\(BLAS.threading == .split ? "split products, OpenBLAS single-threaded" : "OpenBLAS threading")), kernels \(BLAS.coreName)")
    }
}
