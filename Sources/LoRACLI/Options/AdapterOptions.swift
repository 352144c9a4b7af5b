import ArgumentParser

/// What every command that applies adapters shares besides its `--adapter` argument(s): the
/// store they are looked up in (by `AdapterResolver`'s one rule) and whether one made for
/// another base may be used.
struct AdapterOptions: ParsableArguments {
    @OptionGroup var storeOptions: StoreOptions

    @Flag(name: .long, help: "Use an adapter made for another base: a registered one whose shapes match, or a folder whose base_model_name_or_path names another model.")
    var force = false

    func resolver(modelPath: String, baseNames: [String]) -> AdapterResolver {
        AdapterResolver(store: storeOptions, modelPath: modelPath, baseNames: baseNames)
    }
}
