import Testing
import SQIR

/// The default ONNX domain's two spellings ("" and "ai.onnx") become one, "", wherever the IR
/// is built: a file's nodes and opset imports, the text parser, a pass making nodes.
@Suite struct ONNXDomainTests {
    @Test func nodesAndImportsStoreTheCanonicalSpelling() {
        let node = Node("Relu", domain: "ai.onnx")
        #expect(node.domain == "" && node.isOp("Relu") && node.qualifiedOpType == "Relu")
        node.domain = "ai.onnx"
        #expect(node.domain == "")
        node.domain = "com.microsoft"
        #expect(node.domain == "com.microsoft" && !node.isOp("Relu") && node.qualifiedOpType == "com.microsoft::Relu")

        var opset = OpsetImport(domain: "ai.onnx", version: 17)
        #expect(opset.domain == "")
        opset.domain = "ai.onnx"
        #expect(opset.domain == "")
        let model = Model(graph: Graph(name: "g"), opsetImports: [OpsetImport(domain: "ai.onnx", version: 13)])
        #expect(model.opsetVersion() == 13 && model.opsetVersion("ai.onnx") == 13)
        model.setOpsetVersion(21, domain: "ai.onnx")
        #expect(model.opsetImports == [OpsetImport(domain: "", version: 21)])
        #expect(ONNXDomain.displayName("") == "ai.onnx" && ONNXDomain.displayName("com.microsoft") == "com.microsoft")
    }

    @Test func parserAndPatternsAgree() throws {
        let model = try IRParser().parseModel("""
            // ir_version 8, opsets ai.onnx=17
            graph g(%x: f32[4]) -> (%y: f32[4]) {
              %y = ai.onnx::Relu(%x) @relu
              return %y
            }
            """)
        #expect(model.opsetImports == [OpsetImport(domain: "", version: 17)])
        let relu = try #require(model.graph.nodes.first)
        #expect(relu.domain == "" && relu.isOp("Relu"))
        #expect(PatternMatcher.match(Pattern.op("Relu", [.any("x")], domain: "ai.onnx"), root: relu) != nil)
        #expect(PatternMatcher.match(Pattern.op("Relu", [.any("x")]), root: relu) != nil)
        #expect(IRPrinter().print(model).hasPrefix("// ir_version 8, opsets ai.onnx=17\n"))
    }
}
