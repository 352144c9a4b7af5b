import ArgumentParser
import Foundation
import Registry

struct StoreOptions: ParsableArguments {
    @Option(name: .long, help: "Adapter store folder with registry.sqlite (default: $LORA_STORE or adapters).")
    var store: String?

    var root: String {
        store ?? ProcessInfo.processInfo.environment[AdapterStore.environmentVariable] ?? AdapterStore.defaultRoot
    }

    func open() throws -> AdapterStore { try AdapterStore(root: root) }
}
