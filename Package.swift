// swift-tools-version:6.0
// VAVL trainer: distributed data-parallel training of the versatile audio-visual
// emotion recognition model (Goncalves et al.). See README.md for the layout.
import PackageDescription

/// The CPU the numeric modules are compiled for. On x86-64 the default is `haswell` (AVX2
/// and FMA: every x86 server CPU since 2013, AMD Zen included), which makes the elementwise
/// loops (Swish, dropout, LayerNorm, softmax, Adam) twice as wide as the SSE2 baseline.
/// `VAVL_TARGET_CPU=x86-64 swift build …` builds for any x86-64 CPU; `=skylake-avx512` or
/// another LLVM CPU name builds for that one (then `swift package clean` first).
let targetCPU: String? = {
    #if arch(x86_64)
    return Context.environment["VAVL_TARGET_CPU"] ?? "haswell"
    #else
    return Context.environment["VAVL_TARGET_CPU"]
    #endif
}()
let cpuFlags: [String] = targetCPU.map { ["-target-cpu", $0] } ?? []

/// The rule for checks (docs/DESIGN.md §9): every module that parses files, flags or stored
/// configurations, or derives sizes from them, is built with Swift's bounds and overflow
/// checks (`-O`), so untrusted bytes can only ever raise a clean error. Only the numeric
/// kernels (`BLAS`, `VAVLCore`) are built unchecked, and they only see values validated
/// first (the configuration by its table, offsets by the checked `VAVLParameters` layout).
/// Measured on the paper step (docs/PERFORMANCE.md, "Checked builds"): checks everywhere
/// cost ~25 % (12.4–14.1 s against 10.0–11.0 s per iteration), checks outside the kernels
/// nothing measurable (9.1–10.9 s against 9.4–11.5 s, alternating runs).
let checked: [SwiftSetting] = [
    .unsafeFlags(["-O", "-wmo"] + cpuFlags, .when(configuration: .release)),
    .unsafeFlags(cpuFlags, .when(configuration: .debug)),
]

/// Numeric kernels whose inputs are validated before they run: unchecked in release builds.
let kernels: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked", "-wmo"] + cpuFlags, .when(configuration: .release)),
    .unsafeFlags(cpuFlags, .when(configuration: .debug)),
]

/// The numeric core is optimised in debug builds too: its SIMD kernels are 50× slower
/// unoptimised, which would make the test suite crawl. (Debug the core in a release build.)
let alwaysOptimizedKernels: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked", "-wmo"] + cpuFlags, .when(configuration: .release)),
    .unsafeFlags(["-O"] + cpuFlags, .when(configuration: .debug)),
]

/// The executables check at start-up that the CPU can run what the default build compiled.
let cpuCheck: [SwiftSetting] = targetCPU == "haswell" ? [.define("VAVL_REQUIRES_AVX2")] : []

let package = Package(
    name: "vavl",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "vavl", targets: ["vavl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // MARK: - System libraries (found through pkg-config)
        .systemLibrary(name: "CBLAS", path: "Sources/System/CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CMPI", path: "Sources/System/CMPI", pkgConfig: "ompi-c",
                       providers: [.apt(["libopenmpi-dev"])]),
        .systemLibrary(name: "CHDF5", path: "Sources/System/CHDF5", pkgConfig: "hdf5",
                       providers: [.apt(["libhdf5-dev"])]),
        /// zlib: the deflated members of `.npz` feature archives.
        .systemLibrary(name: "CZlib", path: "Sources/System/CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        /// Functions and constants for what Swift cannot import (handles that are macros over
        /// global symbols), one shim per library, so a module needs only its own library's headers.
        .target(name: "CMPIShims", dependencies: ["CMPI"], path: "Sources/System/CMPIShims"),
        .target(name: "CHDF5Shims", dependencies: ["CHDF5"], path: "Sources/System/CHDF5Shims"),
        /// CPU features, the loaded sgemm library, malloc tuning: the machine, no library headers.
        .target(name: "CMachine", path: "Sources/System/CMachine"),

        /// oneDNN's bf16 matmul behind three C functions, and the CPU's bf16 features. Debian's
        /// libdnnl-dev ships no pkg-config file: the library is linked by name.
        .target(name: "COneDNN", path: "Sources/System/COneDNN",
                cSettings: [.unsafeFlags(["-O3"] + (targetCPU.map { ["-march=\($0)"] } ?? []))],
                linkerSettings: [.linkedLibrary("dnnl"), .linkedLibrary("gomp")]),

        // MARK: - Thin Swift wrappers, one module per library
        /// Matrix products: fp32 through OpenBLAS, bf16 through oneDNN.
        .target(name: "BLAS", dependencies: ["CBLAS", "CMachine", "COneDNN"], path: "Sources/System/BLAS",
                swiftSettings: kernels),
        .target(name: "MPI", dependencies: ["CMPI", "CMPIShims", "CMachine"], path: "Sources/System/MPI"),
        .target(name: "HDF5", dependencies: ["CHDF5", "CHDF5Shims"], path: "Sources/System/HDF5"),

        // MARK: - Shared vocabulary: modality, task, label transform, seeded randomness
        .target(name: "VAVLVocabulary", path: "Sources/Vocabulary", swiftSettings: checked),

        // MARK: - The configuration: its one table (keys, types, defaults, valid ranges, resume
        // rules, help), JSON decoding of config files and checkpoints' stored configs, and the
        // presets. Untrusted input: a checked module, validated before the kernels see a value.
        .target(name: "VAVLConfig", dependencies: ["VAVLVocabulary"], path: "Sources/Configuration", swiftSettings: checked),

        // MARK: - The parameter layout: names, shapes and offsets of the flat buffer, derived from
        // a configuration; checked, so that a size the validation let through cannot corrupt memory.
        .target(name: "VAVLParameters", path: "Sources/Parameters", swiftSettings: checked),

        // MARK: - Numeric core: tensor kernels, layers, the VAVL model, losses, optimizer
        .target(name: "VAVLCore", dependencies: ["BLAS", "COneDNN", "VAVLVocabulary", "VAVLConfig", "VAVLParameters"], path: "Sources/Core",
                swiftSettings: alwaysOptimizedKernels),

        // MARK: - Data: the HDF5 corpus format, import, synthetic corpora, statistics
        .target(name: "VAVLData", dependencies: ["HDF5", "CZlib", "VAVLVocabulary"], path: "Sources/Data",
                resources: [.copy("Resources")], swiftSettings: checked),

        // MARK: - Distributed: MPI collectives, gradient buckets, replica synchronisation
        .target(name: "VAVLDistributed", dependencies: ["VAVLCore", "MPI"], path: "Sources/Distributed",
                swiftSettings: checked),

        // MARK: - Training: sampler, loader, the training loop, checkpoints, evaluation
        .target(name: "VAVLTraining", dependencies: ["VAVLCore", "VAVLData", "VAVLDistributed", "MPI", "HDF5", "CMachine"],
                path: "Sources/Training", swiftSettings: checked),

        // MARK: - Experiments: the paper's studies (robustness, embeddings, ablations, repeated
        // runs, the unimodal baseline's runs — trained by the one Trainer), statistics and SVG
        .target(name: "VAVLExperiments", dependencies: ["VAVLTraining", "VAVLCore", "VAVLData", "VAVLDistributed", "MPI", "HDF5"],
                path: "Sources/Experiments", swiftSettings: checked),

        // MARK: - Tests
        .testTarget(name: "TrainingTests", dependencies: ["VAVLTraining", "VAVLExperiments", "VAVLCore", "VAVLData", "HDF5"],
                    path: "Tests/TrainingTests", exclude: ["Fixtures"]),
        .testTarget(name: "SystemTests", dependencies: ["BLAS", "MPI", "HDF5"],
                    path: "Tests/SystemTests"),
        .testTarget(name: "CoreTests", dependencies: ["VAVLCore", "HDF5", "BLAS"],
                    path: "Tests/CoreTests", resources: [.copy("Fixtures")]),
        .testTarget(name: "DataTests", dependencies: ["VAVLData", "HDF5"],
                    path: "Tests/DataTests"),
        /// Two-rank tests: run under `mpirun -np 2` by Scripts/test.sh.
        .executableTarget(name: "vavl-mpi-tests", dependencies: ["BLAS", "CMachine", "MPI", "VAVLCore", "VAVLData", "VAVLDistributed", "VAVLTraining"],
                          path: "Tests/MPITests", swiftSettings: cpuCheck),

        // MARK: - Command-line tool
        .executableTarget(name: "vavl", dependencies: [
            "BLAS", "CMachine", "MPI", "HDF5", "VAVLCore", "VAVLData", "VAVLDistributed", "VAVLTraining", "VAVLExperiments",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], path: "Sources/vavl", swiftSettings: cpuCheck),
    ],
    // Swift 5 language mode: the numeric core shares unsafe buffers between a training
    // thread and MPI progress by design; Swift 6 isolation checking would add no safety there.
    swiftLanguageModes: [.v5]
)
