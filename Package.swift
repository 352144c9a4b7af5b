// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "lora-workbench",
    platforms: [.macOS(.v14)],
    products: [.executable(name: "lora", targets: ["LoRACLI"])],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .target(name: "CKernels"),
        .target(name: "Kernels", dependencies: ["CBLAS", "CKernels"]),
        .target(name: "Formats"),
        .target(name: "Tokenizers", dependencies: ["Formats"]),
        .target(name: "Models", dependencies: ["Kernels", "Formats"]),
        .target(name: "LoRA", dependencies: ["Models", "Formats", "Kernels"]),
        .target(name: "Training", dependencies: ["LoRA", "Models", "Kernels", "Formats", "Tokenizers"]),
        .target(
            name: "Registry",
            dependencies: [
                "LoRA", "Models", "Formats", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(name: "Inference", dependencies: ["Models", "Kernels", "Formats", "Tokenizers"]),
        .target(name: "Experiments", dependencies: ["Training", "Registry", "Inference", "LoRA", "Models", "Formats", "Tokenizers"]),
        .target(
            name: "Server",
            dependencies: [
                "Inference", "Registry", "LoRA", "Models", "Tokenizers",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "LoRACLI",
            dependencies: [
                "Server", "Experiments", .product(name: "Logging", package: "swift-log"), "Inference", "Registry", "Training", "LoRA", "Models", "Formats", "Tokenizers", "Kernels",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .target(name: "TestSupport", dependencies: ["Kernels", "Formats", "Models", "Tokenizers"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "LoRA", "Models", "Kernels", "Formats", "Tokenizers", "TestSupport"]),
        .testTarget(name: "RegistryTests", dependencies: ["Registry", "LoRA", "Models", "Formats", "TestSupport"]),
        .testTarget(name: "LoRATests", dependencies: ["LoRA", "Models", "Formats", "Kernels", "TestSupport"]),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "CKernels", "TestSupport"], exclude: ["Resources"]),
        .testTarget(name: "FormatsTests", dependencies: ["Formats", "TestSupport"]),
        .testTarget(name: "TokenizersTests", dependencies: ["Tokenizers", "Formats", "Kernels", "TestSupport"]),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "Formats", "Kernels", "TestSupport"]),
        .testTarget(
            name: "ExperimentsTests",
            dependencies: ["Experiments", "Training", "Registry", "Inference", "LoRA", "Models", "Formats", "Tokenizers", "TestSupport"]),
        .testTarget(
            name: "ServerTests",
            dependencies: ["Server", "Inference", "Registry", "LoRA", "Models", "Tokenizers", "TestSupport"]),
        .testTarget(name: "InferenceTests", dependencies: ["Inference", "LoRA", "Models", "Kernels", "Tokenizers", "TestSupport"]),
    ]
)
