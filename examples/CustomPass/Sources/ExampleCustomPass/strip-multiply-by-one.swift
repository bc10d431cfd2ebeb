import SQIR

/// `strip-multiply-by-one`: an example of a pass living outside sqopt's pass library, written
/// and registered exactly like a built-in (docs/custom-pass.md walks through it).
///
/// Matches `Mul(x, 1)` and `Mul(1, x)` where the 1 is a constant whose every element is 1
/// and does not broadcast x to a larger shape; with `also-divide` also `Div(x, 1)`.
///
/// Rewrites: uses of the product become uses of x. The Mul itself is erased by the rewrite
/// driver; a constant left without uses is `dce`'s job. A product that is a graph output
/// while x is a graph input is left alone (graph input and output names never change).
///
/// Options: `also-divide` (bool, true).
///
/// ```
/// // before
/// graph g(%x: f32[4]) -> (%y: f32[4]) {
///   %one = const f32[] [1.0]
///   %m = Mul(%one, %x)
///   %y = Relu(%m)
///   return %y
/// }
/// // after strip-multiply-by-one
/// graph g(%x: f32[4]) -> (%y: f32[4]) {
///   %one = const f32[] [1.0]
///   %y: f32[4] = Relu(%x)
///   return %y
/// }
/// ```
public struct StripMultiplyByOne: RewritePass {
    public static let name = "strip-multiply-by-one"
    public static let summary = "Remove multiplications (and divisions) by a constant 1"
    public static let description = """
        Replaces Mul(x, 1), Mul(1, x) and, with also-divide, Div(x, 1) by x when the constant \
        1 does not broadcast x to a larger shape. An example of a pass in its own Swift target.
        """
    public static let alsoDivide = PassOption("also-divide", default: true, help: "also remove Div(x, 1)")
    public static let options = [alsoDivide.declaration]
    /// The counter `RewritePass`'s `run` sets to the number of rewrites (default `rewrites`).
    public static let rewriteCounter = PassStatisticDeclaration("stripped", help: "multiplications and divisions removed")

    /// A constant whose every element is 1 (whether it broadcasts is checked by `keepsShape`).
    static let one = Pattern.constant("one") { $0.isSplat(1) }

    static let multiply = RuleSet([
        // Mul(x, 1) -> x, Mul(1, x) -> x
        RewriteRule("Mul(x, 1) -> x", .op("Mul", [.any("x"), one], commutative: true)) { m, _ in
            keepsShape(m) ? [m["x"]] : nil
        },
    ])

    static let divide = RuleSet([
        // Div(x, 1) -> x
        RewriteRule("Div(x, 1) -> x", .op("Div", [.any("x"), one])) { m, _ in
            keepsShape(m) ? [m["x"]] : nil
        },
    ])

    /// The result has x's type when the constant's rank is at most x's and its dims are 1.
    static func keepsShape(_ m: Match) -> Bool {
        guard let x = m["x"], let one = m.constant("one") else { return false }
        guard let rank = x.type?.rank ?? m.root.output(0)?.type?.rank else { return one.rank == 0 }
        return one.rank <= rank && one.shape.allSatisfy { $0 == 1 }
    }

    public let rules: RuleSet

    public init(options: PassOptions) {
        rules = options[Self.alsoDivide] ? Self.multiply + Self.divide : Self.multiply
    }
}
