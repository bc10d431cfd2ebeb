import Testing
@testable import SQIR

/// print(parse(text)) == text, and the parser's error messages.
@Suite struct ParserTests {
    /// Text exercising every literal the printer writes.
    static let everyLiteral = """
        // ir_version 10, opsets ai.onnx=21, com.microsoft=1
        graph "main graph"(%x: f32[batch,seq,64], %mask: bool[?,seq], %"odd name": f32[*], %s: f32[]) -> (%y: f32[batch,seq,64], %z: i64[2]) {
          %w = const f32[64,64] <4096 elements>
          %b = const f32[2] [0.5, -1.0]
          %i = const i64[2] [-1, 9223372036854775807]
          %h = const f16[2] [0x3c00, 0x0]
          %bf = const bf16[1] [0x3f80]
          %t = const bool[3] [true, false, true]
          %str = const str[2] ["a\\"b", "tab\\tnew\\nline"]
          %d = const f64[1] [1e-300]
          %u = const u64[1] [18446744073709551615]
          %e = const f32[0] []
          %sp = const f32[] [nan]
          %mm: f32[batch,seq,64] = MatMul(%x, %w) @/layer0/MatMul
          %y: f32[batch,seq,64], _ = Split(%mm, _) {axis = -1, num_outputs = 2} @split
          %z: i64[2] = Shape(%y) {start = 0, end = 2}
          com.microsoft::FusedGelu(%mm) {alpha = 1e-05, floats = [1.0, -inf], ints = [1, 2], names = ["p", "q"], empty = [] : ints, none = [] : floats, s = "text", t = dense<f32[2] [1.0, 2.0]>, ts = [dense<i64[1] [3]>], big = dense<f32[100] <100 elements>>, o = opaque<11: 0a0b>}
          %c = If(%mask) {then_branch = 
            graph then(%q: f32[1]) -> (%r: f32[batch,seq,64]) {
              %r: f32[batch,seq,64] = Relu(%mm)
              return %r
            }
          , else_branch = 
            graph else() -> (%r2: f32[batch,seq,64]) {
              %r2: f32[batch,seq,64] = Neg(%x)
              return %r2
            }
          }
          NoOutputs(%c)
          return %y, %z
        }

        """

    @Test func printsBackIdentically() throws {
        let model = try IRParser(allowElidedConstants: true).parseModel(Self.everyLiteral)
        #expect(IRPrinter().print(model) == Self.everyLiteral)
        try Verifier().verify(model)
    }

    @Test func modelHeaderIsOptional() throws {
        let model = try IRParser().parseModel("graph g(%x: f32[2]) -> (%x: f32[2]) {\n  return %x\n}\n")
        #expect(model.opsetVersion() == 17)
        #expect(model.irVersion == 8)
        #expect(model.graph.outputs.first === model.graph.inputs.first)
    }

    @Test func constantValuesAndTypes() throws {
        let model = try IRParser(allowElidedConstants: true).parseModel(Self.everyLiteral)
        let values = model.graph.valuesByName()
        #expect(values["i"]?.constant?.int64Values() == [-1, Int64.max])
        #expect(values["w"]?.constant?.count == 4096)
        #expect(values["w"]?.constant?.doubleValues().allSatisfy { $0 == 0 } == true)
        #expect(values["x"]?.type == TensorType(.float, [.symbolic("batch"), .symbolic("seq"), .known(64)]))
        #expect(values["mask"]?.type?.dims?.first == .unknown)
        #expect(values["odd name"]?.type?.dims == nil)
        let split = model.graph.nodes.first { $0.opType == "Split" }
        #expect(split?.outputs.count == 2 && split?.outputs[1] == nil)
        #expect(split?.inputs.count == 2 && split?.inputs[1] == nil)
    }

    @Test func subgraphUsesOuterValues() throws {
        let model = try IRParser(allowElidedConstants: true).parseModel(Self.everyLiteral)
        let mm = model.graph.nodes.first { $0.opType == "MatMul" }?.output(0)
        let ifNode = model.graph.nodes.first { $0.opType == "If" }
        let relu = ifNode?.subgraphs.first?.nodes.first
        #expect(relu?.input(0) === mm)
        #expect(mm?.uses.contains { $0.node === relu } == true)
    }

    @Test func forwardReferencesParse() throws {
        let text = """
            graph g(%x: f32[2]) -> (%z: f32[2]) {
              %z = Neg(%y)
              %y = Relu(%x)
              return %z
            }
            """
        let model = try IRParser().parseModel(text)
        #expect(throws: IRError.self) { try Verifier().verify(model) }
        try model.graph.sortTopologically()
        try Verifier().verify(model)
    }

    @Test func initializerListedAsInput() throws {
        let text = """
            // ir_version 3, opsets ai.onnx=9
            graph g(%x: f32[2], %w: f32[2]) -> (%y: f32[2]) {
              %w = const f32[2] [1.0, 2.0]
              %y: f32[2] = Add(%x, %w)
              return %y
            }

            """
        let model = try IRParser().parseModel(text)
        #expect(model.graph.inputs[1] === model.graph.initializers[0])
        #expect(IRPrinter().print(model) == text)
        try Verifier().verify(model)
    }

    static let errorCases: [(text: String, message: String)] = [
        ("graph g() -> () {\n  %w = const f32[2] <2 elements>\n  return\n}",
         "<input>:2:21: constant data is elided (<2 elements>); elided constants parse only when allowed (they are zero-filled)"),
        ("graph g(%x: f32[2]) -> (%y: f32[2]) {\n  %y = Relu(%q)\n  return %y\n}",
         "<input>:2:13: use of undefined value '%q'"),
        ("graph g(%x: f32[2]) -> (%y: f32[2]) {\n  %y = Relu(%x\n  return %y\n}",
         "<input>:3:3: expected ')' closing the operands of Relu, found 'return'"),
        ("graph g(%x: f33[2]) -> () {\n  return\n}", "<input>:1:13: unknown element type 'f33'"),
        ("graph g() -> () {\n  %b = const f32[3] [1.0, 2.0]\n  return\n}", "<input>:2:21: f32[3] needs 3 elements, found 2"),
        ("graph g() -> () {\n  %b = const i8[1] [300]\n  return\n}", "<input>:2:21: '300' is not a i8 element"),
        ("graph g(%x: f32[2]) -> (%y: f32[2]) {\n  %y = Relu(%x)\n  %y = Neg(%x)\n  return %y\n}",
         "<input>:3:3: value '%y' is defined twice"),
        ("graph g(%x: f32[2]) -> (%y: f32[2]) {\n  %y = Relu(%x)\n  return %x\n}",
         "<input>:1:25: graph 'g' declares outputs (%y) but returns (%x)"),
        ("graph g() -> () {\n  return\n}\ngraph h() -> () {\n  return\n}", "<input>:4:1: unexpected 'graph' after the graph"),
        ("graph g() -> () {\n  %s = const str[1] [\"abc]\n  return\n}", "<input>:2:22: unterminated string literal"),
        ("graph g() -> () {\n  X() {a = [] : bogus}\n  return\n}", "<input>:2:17: unknown list kind 'bogus'"),
        ("graph g() -> () {\n  X()\n", "<input>:3:1: missing 'return' in graph 'g'"),
    ]

    @Test(arguments: 0..<errorCases.count)
    func errorsNameLineAndColumn(_ index: Int) {
        let (text, message) = Self.errorCases[index]
        do {
            _ = try IRParser().parseModel(text)
            Issue.record("expected an error: \(message)")
        } catch {
            #expect("\(error)" == message)
        }
    }

    @Test func errorNamesTheFile() {
        #expect(throws: IRParseError(file: "t.ir", line: 1, column: 1, message: "expected 'graph', found 'nope'")) {
            try IRParser(file: "t.ir").parseModel("nope")
        }
    }

    @Test func modelBuiltInCodeRoundTrips() throws {
        let graph = Graph(name: "built")
        let x = Value(name: "x", type: TensorType(.float, [.symbolic("n"), .known(4)]))
        graph.inputs = [x]
        let w = graph.addInitializer(Tensor(shape: [4, 4], values: (0..<16).map { Float($0) / 3 }), name: "w")
        let mm = graph.makeNode("MatMul", name: "mm", inputs: [x, w])
        let y = mm.output(0)
        y?.type = TensorType(.float, [.symbolic("n"), .known(4)])
        let q = graph.makeNode("QuantizeLinear", name: "q", inputs: [y, graph.addInitializer(Tensor(scalar: Float(0.1)), name: "scale")],
                               attributes: [Attribute("axis", .int(1)), Attribute("name with space", .string("é\u{1}"))])
        graph.outputs = q.outputs.compactMap { $0 }
        let model = Model(graph: graph, irVersion: 10, opsetImports: [OpsetImport(domain: "", version: 21)])
        let printed = IRPrinter(maxConstantElements: 100).print(model)
        let reparsed = try IRParser().parseModel(printed)
        #expect(IRPrinter(maxConstantElements: 100).print(reparsed) == printed)
        #expect(reparsed.graph.initializers[0].constant?.isIdentical(to: w.constant ?? Tensor(scalar: Float(0))) == true)
    }
}
