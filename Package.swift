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
        .executableTarget(
            name: "LoRACLI",
            dependencies: [
                "Experiments", "Inference", "Registry", "Training", "LoRA", "Models", "Formats", "Tokenizers", "Kernels",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .target(name: "TestSupport", dependencies: ["Kernels", "Formats", "Models", "Tokenizers"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "LoRA", "Models", "Kernels", "Formats", "Tokenizers", "TestSupport"]),
        .testTarget(name: "RegistryTests", dependencies: ["Registry", "LoRA", "Models", "Formats", "TestSupport"]),
        .testTarget(name: "LoRATests", dependencies: ["LoRA", "Models", "Formats", "Kernels", "TestSupport"]),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "TestSupport"], exclude: ["Resources"]),
        .testTarget(name: "FormatsTests", dependencies: ["Formats", "TestSupport"]),
        .testTarget(name: "TokenizersTests", dependencies: ["Tokenizers", "Formats", "TestSupport"]),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "Formats", "Kernels", "TestSupport"]),
        .testTarget(
            name: "ExperimentsTests",
            dependencies: ["Experiments", "Training", "Registry", "Inference", "LoRA", "Models", "Formats", "Tokenizers", "TestSupport"]),
        .testTarget(name: "InferenceTests", dependencies: ["Inference", "LoRA", "Models", "Tokenizers", "TestSupport"]),
    ]
)
