// swift-tools-version:6.0
// sqopt: a SmoothQuant graph optimizer for ONNX transformer models.
// Layering (never the other way): sqopt -> SQDriver -> SQPasses -> SQRuntime -> SQIR,
// SQDriver -> SQONNX -> SQIR + ONNXProto -> CProtobufC. SQRuntime -> SQKernels (C).
import PackageDescription

// Interpreter, passes and I/O are optimized even in debug builds, so that the test suite
// (which runs real transformers through the interpreter) stays quick. Checked arithmetic stays on.
let optimize: [SwiftSetting] = [.unsafeFlags(["-O"], .when(configuration: .debug))]

let package = Package(
    name: "sqopt",
    products: [
        .executable(name: "sqopt", targets: ["sqopt"]),
        .library(name: "SQIR", targets: ["SQIR"]),
        .library(name: "SQRuntime", targets: ["SQRuntime"]),
        .library(name: "SQPasses", targets: ["SQPasses"]),
        .library(name: "SQDriver", targets: ["SQDriver"]),
    ],
    targets: [
        .systemLibrary(
            name: "CProtobufC",
            pkgConfig: "libprotobuf-c",
            providers: [.apt(["libprotobuf-c-dev"])]
        ),
        .target(name: "ONNXProto", dependencies: ["CProtobufC"]),
        .target(name: "SQIR", swiftSettings: optimize),
        .target(name: "SQONNX", dependencies: ["SQIR", "ONNXProto", "CProtobufC"], swiftSettings: optimize),
        .target(
            name: "SQKernels",
            cSettings: [.unsafeFlags(["-O3", "-fno-math-errno"])]
        ),
        .target(name: "SQRuntime", dependencies: ["SQIR", "SQKernels"], swiftSettings: optimize),
        .target(name: "SQPasses", dependencies: ["SQIR", "SQRuntime"], path: "passes", swiftSettings: optimize),
        .target(name: "SQDriver", dependencies: ["SQIR", "SQONNX", "SQRuntime", "SQPasses"], swiftSettings: optimize),
        .executableTarget(name: "sqopt", dependencies: ["SQDriver", "SQPasses"]),
        // libFuzzer target: `swift build -c release --product sqopt-fuzz -Xswiftc -sanitize=fuzzer` (tools/fuzz.sh).
        .executableTarget(name: "sqopt-fuzz", dependencies: ["SQIR", "SQONNX", "SQRuntime"], swiftSettings: optimize),
        .executableTarget(name: "sqopt-bench", dependencies: ["SQIR", "SQRuntime", "SQKernels"], swiftSettings: optimize),
        // A pass written outside the package's pass library, registered exactly like a built-in.
        .target(name: "ExampleCustomPass", dependencies: ["SQIR"], path: "examples/CustomPass/Sources/ExampleCustomPass"),
        .executableTarget(name: "sqopt-custom", dependencies: ["SQDriver", "SQPasses", "ExampleCustomPass"], path: "examples/CustomPass/Sources/sqopt-custom"),

        .testTarget(name: "SQIRTests", dependencies: ["SQIR"]),
        .testTarget(name: "SQONNXTests", dependencies: ["SQONNX", "SQIR"]),
        .testTarget(name: "SQKernelsTests", dependencies: ["SQKernels", "SQRuntime", "SQIR"]),
        .testTarget(name: "SQRuntimeTests", dependencies: ["SQRuntime", "SQONNX", "SQIR"]),
        .testTarget(name: "SQPassesTests", dependencies: ["SQPasses", "SQRuntime", "SQONNX", "SQIR", "SQDriver", "ExampleCustomPass"]),
        .testTarget(name: "CLITests", dependencies: ["SQDriver", "SQIR"], exclude: ["Snapshots"]),
    ],
    swiftLanguageModes: [.v6]
)
