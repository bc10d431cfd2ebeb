import SQIR

extension PassRegistry {
    /// Every pass that ships with sqopt, registered in one place. Adding a pass: one file in
    /// passes/ named after its pipeline token, one line here, one section in docs/passes.md
    /// (a test checks the docs against this registry).
    public static let builtin: PassRegistry = {
        var registry = PassRegistry()
        registry.register(CanonicalizeNorms.self)
        registry.register(DCE.self)
        registry.register(FoldConstants.self)
        registry.register(ShapeInference.self)
        registry.register(UpgradeOpset.self)
        registry.register(Calibrate.self)
        registry.register(Smooth.self)
        registry.register(Quantize.self)
        return registry
    }()
}
