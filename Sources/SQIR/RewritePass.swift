/// A pass made of rewrite rules: the pass declares `name`, `summary`, `description` and its
/// `rules`; the default `run` applies them with a `RewriteDriver` to a fixed point and
/// reports how many rewrites applied in `rewriteCounter` (default `rewrites`). It is a
/// `Pass` like any other, registered, parsed, instrumented and listed the same way.
///
/// ```swift
/// public struct StripNegNeg: RewritePass {
///     public static let name = "strip-neg-neg"
///     public static let summary = "Remove double negations"
///     public static let description = "Replaces Neg(Neg(x)) by x."
///     public let rules = RuleSet([
///         // Neg(Neg(x)) -> x
///         RewriteRule("Neg(Neg(x)) -> x", .op("Neg", [.op("Neg", [.any("x")])])) { m, _ in [m["x"]] },
///     ])
///     public init(options: PassOptions) {}
/// }
/// ```
public protocol RewritePass: Pass {
    /// The rules, fixed or built from the options in `init(options:)`.
    var rules: RuleSet { get }
    /// The counter the default `run` sets to the number of rewrites; it is also the default
    /// `statistics` declaration.
    static var rewriteCounter: PassStatisticDeclaration { get }
}

extension RewritePass {
    public static var rewriteCounter: PassStatisticDeclaration {
        PassStatisticDeclaration("rewrites", help: "pattern rewrites applied")
    }

    public static var statistics: [PassStatisticDeclaration] { [rewriteCounter] }

    /// Applies `rules` everywhere (subgraphs included) until none applies.
    public func run(on model: Model, context: PassContext) throws -> PassResult {
        let summary = try RewriteDriver().apply(rules, to: model, context: context)
        return PassResult(rewrites: summary, counter: Self.rewriteCounter.name)
    }
}
