import Foundation
import Testing
import SQIR
import SQPasses
import ExampleCustomPass

/// The example custom pass (examples/CustomPass) goes through the same registry, pipeline
/// parser and pass manager as the built-ins.
let stripMultiplyByOneCases = """
    // CHECK-LABEL: graph strips_both_orders
    // CHECK: %a = Relu(%x)
    // CHECK-NEXT: %y: f32[4] = Neg(%a)
    graph strips_both_orders(%x: f32[4]) -> (%y: f32[4]) {
      %one = const f32[] [1.0]
      %m1 = Mul(%one, %x)
      %a = Relu(%m1)
      %m2 = Mul(%a, %one)
      %d = Div(%m2, %one)
      %y = Neg(%d)
      return %y
    }

    // -----
    // A [1,4] one broadcasts a [4] x to [1,4]: not a no-op.
    graph dont_strip_broadcasting_one(%x: f32[4]) -> (%y: f32[1,4]) {
      %ones = const f32[1,4] [1.0, 1.0, 1.0, 1.0]
      %y = Mul(%x, %ones)
      return %y
    }

    // -----
    // The product is a graph output and x a graph input: names would change, so no.
    graph dont_rename_graph_io(%x: f32[4]) -> (%y: f32[4]) {
      %one = const f32[] [1.0]
      %y = Mul(%x, %one)
      return %y
    }
    """

/// The IR test file of the example `div-to-mul` (the CLI test runs it through `sqopt-custom opt`).
let divToMulCases = (try? String(contentsOfFile: RepositoryPath.path("examples/CustomPass/Tests/div-to-mul.sqir"),
                                 encoding: .utf8)) ?? "missing examples/CustomPass/Tests/div-to-mul.sqir"

@Suite struct CustomPassTests {
    @Test(arguments: IRTestCase.cases(stripMultiplyByOneCases, suite: "strip-multiply-by-one",
                                      pipeline: "strip-multiply-by-one,dce"))
    func irCases(_ testCase: IRTestCase) throws {
        try testCase.run()
    }

    @Test(arguments: IRTestCase.cases(divToMulCases, suite: "div-to-mul", pipeline: "div-to-mul,dce"))
    func divToMulIRCases(_ testCase: IRTestCase) throws {
        try testCase.run()
    }

    @Test func rewritePassesGetTheirCounterAndRun() throws {
        #expect(StripMultiplyByOne.statistics.map(\.name) == ["stripped"])
        #expect(DivToMul.statistics.map(\.name) == ["rewrites"])
        let model = try IRParser().parseModel(FileCheck.splitCases(divToMulCases)[1])
        let report = try PassManager(pipeline: "div-to-mul", registry: testRegistry).run(on: model)
        #expect(report.records.first?.result.statistics[counter: "rewrites"] == 1)
        #expect(model.graph.nodes.map(\.opType) == ["Mul", "Relu"])
    }

    @Test func optionsWorkLikeBuiltins() throws {
        let model = try IRParser().parseModel(FileCheck.splitCases(stripMultiplyByOneCases)[0])
        let report = try PassManager(pipeline: "strip-multiply-by-one{also-divide=false}", registry: testRegistry).run(on: model)
        #expect(report.records.first?.result.statistics[counter: "stripped"] == 2)
        #expect(model.graph.nodes.map(\.opType) == ["Relu", "Div", "Neg"])
    }

    @Test func registeredLikeABuiltin() throws {
        #expect(testRegistry.info(named: "strip-multiply-by-one")?.summary == StripMultiplyByOne.summary)
        #expect(testRegistry.listing().contains("strip-multiply-by-one  Remove multiplications"))
        #expect(PassRegistry.builtin.info(named: "strip-multiply-by-one") == nil)
        do {
            _ = try PipelineParser(registry: testRegistry).parse("strip-multiply-by-one{also-divid=true}")
            Issue.record("expected an unknown option")
        } catch {
            #expect(error.description == "unknown option 'also-divid' for pass 'strip-multiply-by-one' (did you mean 'also-divide'?); valid options: also-divide")
        }
    }
}

/// docs/custom-pass.md shows the example pattern pass in full, and it stays under 40 lines.
@Suite struct CustomPassDocsTests {
    @Test func docsShowTheWholeDivToMulFile() throws {
        let source = try String(contentsOfFile: RepositoryPath.path("examples/CustomPass/Sources/ExampleCustomPass/div-to-mul.swift"),
                                encoding: .utf8)
        let docs = try String(contentsOfFile: RepositoryPath.path("docs/custom-pass.md"), encoding: .utf8)
        let lines = source.split(separator: "\n", omittingEmptySubsequences: false).dropLast().count
        #expect(lines < 40, "div-to-mul.swift has \(lines) lines; the example promises under 40")
        #expect(docs.contains("```swift\n" + source + "```\n"), "docs/custom-pass.md must show div-to-mul.swift verbatim")
        #expect(docs.contains("(\(lines) lines)"), "docs/custom-pass.md states the line count")
    }
}
