import Testing
import SQIR

@Suite struct PatternTests {
    func parse(_ text: String) throws -> Model { try IRParser().parseModel(text) }
    func printed(_ model: Model) -> String { IRPrinter().print(model.graph) }
    func node(_ model: Model, _ name: String) throws -> Node {
        try #require(model.graph.nodes.first { $0.name == name })
    }

    static let mulByOne = """
        graph g(%x: f32[4]) -> (%y: f32[4]) {
          %one = const f32[] [1.0]
          %m = Mul(%one, %x) @mul
          %y = Relu(%m) @relu
          return %y
        }
        """

    @Test func commutativeOperandsAndCaptures() throws {
        let model = try parse(Self.mulByOne)
        let pattern = Pattern.op("Mul", [.any("x"), .scalar(1, "one")], commutative: true)
        let match = try #require(PatternMatcher.match(pattern, root: try node(model, "mul")))
        #expect(match["x"] === model.graph.inputs[0])
        #expect(match.constant("one")?.scalarDouble == 1)
        #expect(PatternMatcher.match(Pattern.op("Mul", [.any("x"), .scalar(1)]), root: try node(model, "mul")) == nil)
    }

    @Test func repeatedCaptureMustBindTheSameValue() throws {
        let model = try parse("""
            graph g(%x: f32[4], %z: f32[4]) -> (%a: f32[4], %b: f32[4]) {
              %a = Mul(%x, %x) @square
              %b = Mul(%x, %z) @product
              return %a, %b
            }
            """)
        let square = Pattern.op("Mul", [.any("x"), .any("x")])
        #expect(PatternMatcher.match(square, root: try node(model, "square")) != nil)
        #expect(PatternMatcher.match(square, root: try node(model, "product")) == nil)
    }

    @Test func useCountsAndAttributes() throws {
        let model = try parse("""
            graph g(%x: f32[2,4]) -> (%y: f32[2,1], %n: f32[2,1]) {
              %m = ReduceMean(%x) {axes = [-1], keepdims = 1} @mean
              %y = Sqrt(%m) @sqrt
              %n = Neg(%m) @neg
              return %y, %n
            }
            """)
        let lastAxis = Pattern.op("ReduceMean", [.any]).attribute("axes") { $0?.ints == [-1] }
        #expect(PatternMatcher.match(.op("Sqrt", [lastAxis]), root: try node(model, "sqrt")) != nil)
        #expect(PatternMatcher.match(.op("Sqrt", [lastAxis.singleUse]), root: try node(model, "sqrt")) == nil)
        #expect(PatternMatcher.match(.op("Sqrt", [lastAxis.uses(2)]), root: try node(model, "sqrt")) != nil)
        let keepdims0 = Pattern.op("ReduceMean", [.any]).attribute("keepdims", equals: 0, default: 1)
        #expect(PatternMatcher.match(.op("Sqrt", [keepdims0]), root: try node(model, "sqrt")) == nil)
    }

    /// `.omittable(p)`: an optional operand written (matching p, captured), written as `_`, or
    /// a trailing input left out; a present operand that does not match p fails.
    @Test func omittableOperands() throws {
        let model = try parse("""
            graph g(%x: f32[2,4]) -> (%a: f32[2,1], %b: f32[2,1], %c: f32[], %d: f32[2,1]) {
              %axes = const i64[1] [-1]
              %a = ReduceMax(%x, %axes) {keepdims = 1} @input
              %b = ReduceMax(%x) {axes = [-1], keepdims = 1} @attribute
              %c = ReduceMax(%x, _) {keepdims = 0} @blank
              %d = ReduceMax(%x, %a) {keepdims = 1} @dynamic
              return %a, %b, %c, %d
            }
            """)
        let pattern = Pattern.op("ReduceMax", [.any("x"), .omittable(.constant("axes"))])
        let written = try #require(PatternMatcher.match(pattern, root: try node(model, "input")))
        #expect(written.constant("axes")?.int64Values() == [-1])
        for name in ["attribute", "blank"] {
            let omitted = try #require(PatternMatcher.match(pattern, root: try node(model, name)), "\(name)")
            #expect(omitted["axes"] == nil && omitted["x"] === model.graph.inputs[0])
        }
        #expect(PatternMatcher.match(pattern, root: try node(model, "dynamic")) == nil)
        // `.absent` alone also matches a trailing input left out, and nothing else.
        #expect(PatternMatcher.match(.op("ReduceMax", [.any, .absent]), root: try node(model, "attribute")) != nil)
        #expect(PatternMatcher.match(.op("ReduceMax", [.any, .absent]), root: try node(model, "input")) == nil)
    }

    @Test func alternativesAndOptionalWrappers() throws {
        let model = try parse("""
            graph g(%x: f16[4]) -> (%y: f32[4], %z: f32[4]) {
              %c = Cast(%x) {to = 1} @cast
              %y = Sqrt(%c) @with_cast
              %z = Sqrt(%x) @without_cast
              return %y, %z
            }
            """)
        let pattern = Pattern.op("Sqrt", [.optional("Cast", around: .any("x"))])
        #expect(PatternMatcher.match(pattern, root: try node(model, "with_cast"))?["x"] === model.graph.inputs[0])
        #expect(PatternMatcher.match(pattern, root: try node(model, "without_cast"))?["x"] === model.graph.inputs[0])
    }

    static let rules = RuleSet([
        // x * 1 -> x
        RewriteRule("x*1 -> x", .op("Mul", [.any("x"), .scalar(1)], commutative: true)) { m, _ in [m["x"]] },
    ]) + RuleSet([
        // Relu(x) -> Max(x, 0), declined for graph inputs to show a decline after staging
        RewriteRule("Relu(x) -> Max(x, 0)", .op("Relu", [.any("x")])) { m, b in
            guard let x = m["x"] else { return nil }
            let zero = b.constant(Tensor(scalar: Float(0)), name: "zero")
            let max = b.op("Max", [x, zero])
            return x.producer == nil ? nil : [max]
        },
    ])

    @Test func driverRewritesToAFixedPoint() throws {
        let model = try parse(Self.mulByOne)
        let summary = try RewriteDriver().apply(Self.rules, to: model)
        #expect(summary.count(of: "x*1 -> x") == 1)
        #expect(summary.count(of: "Relu(x) -> Max(x, 0)") == 0)
        // The declined Relu rewrite staged a Max and a constant: nothing of it may remain.
        #expect(printed(model) == """
            graph g(%x: f32[4]) -> (%y: f32[4]) {
              %one = const f32[] [1.0]
              %y: f32[4] = Relu(%x) @relu
              return %y
            }

            """)
        #expect(model.graph.inputs[0].uses.count == 1)
        try Verifier().verify(model)
    }

    @Test func graphOutputNamesSurviveReplacement() throws {
        let model = try parse("""
            graph g(%x: f32[4]) -> (%y: f32[4]) {
              %r = Relu(%x) @relu
              %one = const f32[] [1.0]
              %y = Mul(%r, %one) @mul
              return %y
            }
            """)
        _ = try RewriteDriver().apply(Self.rules, to: model)
        #expect(printed(model) == """
            graph g(%x: f32[4]) -> (%y: f32[4]) {
              %one = const f32[] [1.0]
              %y: f32[4] = Relu(%x) @relu
              return %y
            }

            """)
    }

    @Test func replacingAnOutputByAnInputIsDeclined() throws {
        let model = try parse("""
            graph g(%x: f32[4]) -> (%y: f32[4]) {
              %one = const f32[] [1.0]
              %y = Mul(%x, %one) @mul
              return %y
            }
            """)
        let summary = try RewriteDriver().apply(Self.rules, to: model)
        #expect(summary.total == 0)
        #expect(model.graph.outputs[0].name == "y")
    }

    @Test func stagedNodesMayWrapTheRoot() throws {
        // Relu(x) -> Mul(Relu(x), 2), applied once (the new Relu is marked).
        let rules = RuleSet([
            RewriteRule("wrap", Pattern.op("Relu", [.any]).attribute("done") { $0 == nil }) { m, b in
                b.modify(m.root) { $0[attribute: "done"] = Attribute("done", .int(1)) }
                let two = b.constant(Tensor(scalar: Float(2)), name: "two")
                return [b.op("Mul", [m.root.output(0), two])]
            },
        ])
        let model = try parse("""
            graph g(%x: f32[4]) -> (%y: f32[4]) {
              %r = Relu(%x) @relu
              %y = Neg(%r) @neg
              return %y
            }
            """)
        _ = try RewriteDriver().apply(rules, to: model)
        #expect(printed(model) == """
            graph g(%x: f32[4]) -> (%y: f32[4]) {
              %two = const f32[] [2.0]
              %r = Relu(%x) {done = 1} @relu
              %relu/Mul_output = Mul(%r, %two) @relu/Mul
              %y: f32[4] = Neg(%relu/Mul_output) @neg
              return %y
            }

            """)
        try Verifier().verify(model)
    }

    @Test func nonConvergingRulesThrow() throws {
        let flip = RuleSet([
            RewriteRule("Neg -> Abs", .op("Neg", [.any("x")])) { m, b in [b.op("Abs", [m["x"]])] },
            RewriteRule("Abs -> Neg", .op("Abs", [.any("x")])) { m, b in [b.op("Neg", [m["x"]])] },
        ])
        let model = try parse("graph g(%x: f32[4]) -> (%y: f32[4]) {\n  %n = Neg(%x)\n  %y = Relu(%n)\n  return %y\n}")
        #expect(throws: IRError.self) { try RewriteDriver(maxRewrites: 50).apply(flip, to: model) }
    }
}
