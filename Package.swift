// swift-tools-version:6.0
import PackageDescription

// The kernels are compiled three times from one source folder (Sources/KernelSource, linked into each
// Kernels* target), each with its own instruction set; Runtime picks one at run time from the CPU's
// features. Swift SIMD emits vector FMA only when the module is compiled for a CPU that has it.
#if arch(x86_64)
let avx512Flags: [String] = ["-target-cpu", "skylake-avx512"]
let avx2Flags: [String] = ["-target-cpu", "haswell"]
#else
let avx512Flags: [String] = []
let avx2Flags: [String] = []
#endif
// -fno-math-errno lets sqrt vectorize (Adam); -Ounchecked drops overflow traps in the hot loops only.
let kernelReleaseFlags = ["-Ounchecked", "-Xcc", "-fno-math-errno"]
// Debug builds (swift test) optimize the kernels and the executor too: the tests then check the code
// that ships (a step that allocates nothing, bit-identical results) and train at a useful speed.
let optimizedDebugFlags = ["-O"]
let runtimeSettings: [SwiftSetting] = [
    .unsafeFlags(["-Xcc", "-fno-math-errno"], .when(configuration: .release)),
    .unsafeFlags(optimizedDebugFlags, .when(configuration: .debug)),
]

func kernelTarget(_ name: String, _ isaFlags: [String]) -> Target {
    .target(
        name: name,
        dependencies: ["KernelInterface"],
        swiftSettings: [
            .unsafeFlags(isaFlags),
            .unsafeFlags(kernelReleaseFlags, .when(configuration: .release)),
            .unsafeFlags(optimizedDebugFlags, .when(configuration: .debug)),
        ]
    )
}

let package = Package(
    name: "mlpc",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "mlpc", targets: ["mlpc"]),
        // Libraries for the fuzz package (Fuzz/Package.swift), which depends on this one by path.
        .library(name: "SpecParser", targets: ["SpecParser"]),
        .library(name: "Planner", targets: ["Planner"]),
        .library(name: "KernelInterface", targets: ["KernelInterface"]),
        .library(name: "Files", targets: ["Files"]),
        .library(name: "DataSources", targets: ["DataSources"]),
        .library(name: "Execution", targets: ["Execution"]),
        .library(name: "Runtime", targets: ["Runtime"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // ONNX's protobuf messages (the runtime library only: the generated code is committed).
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CYaml", pkgConfig: "yaml-0.1",
            providers: [.apt(["libyaml-dev"]), .brew(["libyaml"])]),
        .systemLibrary(
            name: "CZlib", pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"]), .brew(["zlib"])]),
        // RFC 4180 CSV parsing for table data (Debian's libcsv-dev, which ships no pkg-config file).
        .systemLibrary(name: "CCSV", providers: [.apt(["libcsv-dev"])]),
        .systemLibrary(
            name: "CPNG", pkgConfig: "libpng",
            providers: [.apt(["libpng-dev"]), .brew(["libpng"])]),

        // Flush-to-zero for the threads that run kernels.
        .target(name: "CFloatEnvironment"),
        // Cache prefetch of the next batch's rows (C: Swift has no prefetch instruction).
        .target(name: "CMemoryHints"),
        // SHA-256 block compression on the CPU's SHA instructions (checked at run time), for dataset checksums.
        .target(name: "CSHA256"),
        // HTTP GET on libcurl opened with dlopen at the first download: the executable links no
        // networking library, so starting mlpc does not load curl, TLS and their dependencies.
        .target(name: "CCurlLoader", linkerSettings: [.linkedLibrary("dl", .when(platforms: [.linux]))]),
        // Whole-file gzip inflation on libdeflate, opened with dlopen when the system has it: about 3.5
        // times zlib's speed on the train images; zlib remains the decoder that always works.
        .target(name: "CDeflateLoader", linkerSettings: [.linkedLibrary("dl", .when(platforms: [.linux]))]),
        // The few MPI calls of data-parallel training, on Open MPI's libmpi opened with dlopen only when
        // mlpc runs under mpirun: a single-process mlpc neither needs MPI nor loads it.
        .target(name: "CMPILoader", linkerSettings: [.linkedLibrary("dl", .when(platforms: [.linux]))]),
        // The process arguments from the C library's initializer call, for when /proc (where Swift's
        // CommandLine reads them on Linux) is not mounted.
        .target(name: "CProcessArguments"),

        .target(name: "SpecParser", dependencies: ["CYaml"]),
        .target(name: "Planner", dependencies: ["SpecParser", "KernelInterface"]),
        .target(name: "KernelInterface"),
        kernelTarget("KernelsAVX512", avx512Flags),
        kernelTarget("KernelsAVX2", avx2Flags),
        kernelTarget("KernelsPortable", []),
        // Files mlpc reads and writes: safetensors and its JSON header, PNG, SHA-256, atomic writes.
        .target(
            name: "Files", dependencies: ["SpecParser", "CZlib", "CPNG", "CSHA256"], exclude: ["README.md"],
            swiftSettings: runtimeSettings),
        // The pictures: canvas, bitmap font, curves, image grids, confusion matrices, terminal images.
        .target(name: "Figures", dependencies: ["Files"], exclude: ["README.md"], swiftSettings: runtimeSettings),
        // Samples and targets behind the Dataset interface; IDX files with MNIST's download and checksums.
        .target(
            name: "DataSources", dependencies: ["Planner", "Files", "CCSV", "CZlib", "CDeflateLoader", "CCurlLoader"],
            exclude: ["README.md"], swiftSettings: runtimeSettings),
        // Executing a plan: the kernel bindings, the step executor, the worker pool, the trainer, the benchmark.
        .target(
            name: "Execution",
            dependencies: [
                "Planner", "KernelInterface", "KernelsAVX512", "KernelsAVX2", "KernelsPortable", "DataSources", "Files",
                "CFloatEnvironment", "CMemoryHints",
            ],
            exclude: ["README.md"], swiftSettings: runtimeSettings),
        // The ranks of an mpirun job (Open MPI through CMPILoader) as Execution's RankGroup.
        .target(name: "Ranks", dependencies: ["Execution", "CMPILoader"], exclude: ["README.md"]),
        // A training run and its artifacts: run directories, checkpoints, model files, the run's pictures.
        .target(
            name: "Runtime", dependencies: ["Execution", "DataSources", "Files", "Figures", "Planner"],
            exclude: ["README.md"], swiftSettings: runtimeSettings),
        // ONNX's protobuf schema as Swift types, generated from onnx.proto by scripts/generate-onnx-proto.
        .target(
            name: "ONNXProto", dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")],
            exclude: ["README.md"]),
        // A trained model as an ONNX graph: one export function per layer kind.
        .target(
            name: "ONNXExport", dependencies: ["ONNXProto", "Planner", "SpecParser", "Files"], exclude: ["README.md"]),
        .executableTarget(
            name: "mlpc",
            dependencies: [
                "Runtime", "ONNXExport", "Execution", "DataSources", "Files", "Figures", "Planner", "SpecParser", "CProcessArguments", "Ranks",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // Interposes malloc to count allocations; linked into the runtime tests only.
        .target(name: "MallocCounter"),

        // What several test targets share: the tests' own deterministic random generator.
        .target(name: "TestSupport", path: "Tests/TestSupport"),

        .testTarget(name: "SpecParserTests", dependencies: ["SpecParser", "TestSupport"]),
        .testTarget(name: "PlannerTests", dependencies: ["Planner", "SpecParser", "TestSupport"]),
        .testTarget(
            name: "RuntimeTests",
            dependencies: [
                "Runtime", "Execution", "DataSources", "Files", "Figures", "Planner", "SpecParser", "KernelInterface",
                "KernelsPortable", "KernelsAVX2", "KernelsAVX512", "MallocCounter", "TestSupport",
            ]),
        .testTarget(name: "ONNXExportTests", dependencies: ["ONNXExport", "ONNXProto", "Planner", "SpecParser", "Files", "TestSupport"]),
        .testTarget(name: "mlpcTests", dependencies: ["mlpc", "TestSupport"]),
    ],
    swiftLanguageModes: [.v5]
)
