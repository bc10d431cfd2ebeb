import SQIR

/// `div-to-mul`: `Div(x, c) -> Mul(x, 1/c)` when c is a float constant whose reciprocal,
/// rounded to c's type, is finite and non-zero in every element (c = 0, a reciprocal that
/// overflows, integer division and a computed divisor are declined). A multiply is cheaper
/// than a divide; the product can differ from the quotient in the last bit unless c is a
/// power of two. A declined constant divisor leaves a remark (`--remarks`).
/// Test: examples/CustomPass/Tests/div-to-mul.sqir (`sqopt-custom opt`).
public struct DivToMul: RewritePass {
    public static let name = "div-to-mul"
    public static let summary = "Replace division by a float constant with a multiplication by its reciprocal"
    public static let description = """
        Rewrites Div(x, c) into Mul(x, 1/c) when c is a float constant whose reciprocal is finite \
        and non-zero in every element. An example pattern pass: a RewritePass is its rules.
        """
    /// A float constant: integer Div truncates, so its reciprocal would change the result.
    static let divisor = Pattern.constant("c") { $0.dtype.isFloatingPoint }

    public let rules = RuleSet([
        // Div(x, c) -> Mul(x, 1/c)
        RewriteRule("Div(x, c) -> Mul(x, 1/c)", .op("Div", [.any("x"), divisor])) { m, b in
            guard let reciprocal = m.constant("c")?.mappingFloats({ 1 / $0 }),
                  reciprocal.doubleValues().allSatisfy({ $0.isFinite && $0 != 0 }) else {
                b.remark("kept: 1/c is not finite and non-zero in every element")
                return nil
            }
            return [b.op("Mul", [m["x"], b.constant(reciprocal)])]
        },
    ])

    public init(options: PassOptions) {}
}
