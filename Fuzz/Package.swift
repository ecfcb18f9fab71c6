// swift-tools-version:6.0
import PackageDescription

// libFuzzer targets for mlpc's readers of untrusted bytes: the spec front end, the safetensors reader
// and the IDX reader (plain and gzip). A separate package, so the sanitizer flags never reach the
// product build; scripts/fuzz builds it with
//   swift build -c release --package-path Fuzz -Xswiftc -sanitize=fuzzer,address
// Each target's main.swift hands its check to LLVMFuzzerRunDriver (SwiftPM executables own main, so
// libFuzzer's main is not used).
let package = Package(
    name: "mlpc-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "mlpc", path: "..")
    ],
    targets: [
        .target(
            name: "FuzzInputChecks",
            dependencies: [
                .product(name: "SpecParser", package: "mlpc"),
                .product(name: "Planner", package: "mlpc"),
                .product(name: "KernelInterface", package: "mlpc"),
                .product(name: "Files", package: "mlpc"),
                .product(name: "DataSources", package: "mlpc"),
                .product(name: "Runtime", package: "mlpc"),
            ]),
        .target(name: "CFuzzerDriver"),
        .executableTarget(name: "FuzzSpec", dependencies: ["FuzzInputChecks", "CFuzzerDriver"]),
        .executableTarget(name: "FuzzSafetensors", dependencies: ["FuzzInputChecks", "CFuzzerDriver"]),
        .executableTarget(name: "FuzzIDX", dependencies: ["FuzzInputChecks", "CFuzzerDriver"]),
    ],
    swiftLanguageModes: [.v5]
)
