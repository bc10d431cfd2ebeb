import Foundation
import SQIR
import Testing

/// `sqopt opt`: IR text in, a pipeline, IR text out, tested as MLIR tests its passes: an IR file
/// with CHECK lines run through the binary and its output matched with the project's FileCheck.
/// Also `--remarks` (here and on the optimize command) and the upgrade-opset step the pass
/// manager schedules for quantize.
@Suite struct CLIOptTests {
    static let divToMul = CLI.path("examples/CustomPass/Tests/div-to-mul.sqir")

    /// `sqopt-custom` (sqopt plus the example passes), built beside `sqopt`.
    static func customTool() throws -> String {
        let tool = URL(fileURLWithPath: try CLI.binary()).deletingLastPathComponent().appendingPathComponent("sqopt-custom").path
        guard FileManager.default.isExecutableFile(atPath: tool) else {
            throw CLITestError("sqopt-custom not found at \(tool): run `swift build --build-tests`")
        }
        return tool
    }

    /// A linear layer (constant weight; a Relu after it, so it is no output head) after a
    /// ReduceMean whose axes are an attribute until opset 18, in an opset-17 model: quantize
    /// needs opset 21, and upgrade-opset rewrites the mean.
    static let linearAtOpset17 = """
        // ir_version 8, opsets ai.onnx=17
        graph linear(%x: f32[2,4]) -> (%y: f32[2,4]) {
          %w = const f32[4,4] [1.0, 0.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0, 0.0, 4.0]
          %m = ReduceMean(%x) {axes = [-1], keepdims = 1} @mean
          %c = Sub(%x, %m)
          %h = MatMul(%c, %w) @fc
          %y = Relu(%h)
          return %y
        }

        """

    @Test func divToMulMatchesItsCheckLines() throws {
        let text = try String(contentsOfFile: Self.divToMul, encoding: .utf8)
        let result = try CLI.execute(try Self.customTool(), ["opt", Self.divToMul, "--passes", "div-to-mul,dce", "--split-input-file"])
        #expect(result.status == 0, "\(result)")
        #expect(result.stderr.isEmpty, "nothing on stderr without --remarks: \(result)")
        do {
            try FileCheck().match(result.stdout, checks: text)
        } catch {
            Issue.record("\(error)\n--- output\n\(result.stdout)")
        }
        // dont_ cases come out exactly as they went in.
        let inputs = FileCheck.splitCases(text)
        let outputs = result.stdout.components(separatedBy: "// -----\n")
        #expect(inputs.count == outputs.count && outputs.count >= 7, "\(inputs.count) cases in, \(outputs.count) out")
        var unchanged = 0
        for (input, output) in zip(inputs, outputs) where output.contains("graph dont_") {
            #expect(output == IRPrinter(maxConstantElements: .max).print(try IRParser().parseModel(input)), "\(output)")
            unchanged += 1
        }
        #expect(unchanged == 4)
    }

    @Test func remarksSayWhyARewriteWasDeclined() throws {
        let tool = try Self.customTool()
        let result = try CLI.execute(tool, ["opt", Self.divToMul, "--passes", "div-to-mul", "--split-input-file", "--remarks"])
        #expect(result.status == 0, "\(result)")
        let remarks = result.stderr.split(separator: "\n").filter { $0.hasPrefix("remark: [div-to-mul] ") }
        #expect(remarks.count == 2, "the zero divisor and the overflowing reciprocal: \(result)")
        #expect(remarks.allSatisfy { $0.hasSuffix("(Div): kept: 1/c is not finite and non-zero in every element") }, "\(remarks)")
    }

    @Test func optimizeRemarksExplainLayersLeftFloat() throws {
        let dir = try CLI.copyModel("tiny-llama")
        defer { try? FileManager.default.removeItem(atPath: (dir as NSString).deletingLastPathComponent) }
        let plain = try CLI.run(["--passes", "smooth,quantize", dir + "/model.onnx", "-o", dir + "/a.onnx"])
        #expect(plain.status == 0, "\(plain)")
        #expect(!plain.stderr.contains("remark:"), "remarks only with --remarks: \(plain)")
        let result = try CLI.run(["--passes", "smooth,quantize{lm-head=false}", dir + "/model.onnx", "-o", dir + "/b.onnx", "--remarks", "--quiet"])
        #expect(result.status == 0, "\(result)")
        #expect(result.stderr.contains("remark: [quantize] '/lm_head/MatMul' stays float: "), "the LM head: \(result)")
        #expect(result.stderr.contains("remark: [smooth] "), "\(result)")
        #expect(!result.stderr.contains("note:"), "--quiet still hides notes: \(result)")
    }

    @Test func quantizeGetsUpgradeOpsetAsAStepOfItsOwn() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.linearAtOpset17.write(toFile: dir + "/linear.sqir", atomically: true, encoding: .utf8)
        let result = try CLI.run(["opt", dir + "/linear.sqir", "--passes", "quantize", "--time-passes",
                                  "--print-ir-after", "upgrade-opset", "--statistics"])
        #expect(result.status == 0, "\(result)")
        #expect(result.stderr.contains("note: running upgrade-opset{to=21} first: 'quantize' needs opset 21 (the model imports opset 17)\n"),
                "\(result)")
        let dump = try #require(result.stderr.range(of: "// ----- IR after pass 'upgrade-opset' -----\n"), "\(result)")
        #expect(result.stderr[dump.upperBound...].hasPrefix("// ir_version 10, opsets ai.onnx=21\n"), "\(result)")
        let rows = result.stderr.split(separator: "\n").filter { $0.hasSuffix("%  upgrade-opset") || $0.hasSuffix("%  quantize") }
        #expect(rows.count == 2 && rows[0].hasSuffix("upgrade-opset"), "timing rows in pipeline order: \(result)")
        #expect(result.stderr.contains("  upgrade-opset: changed, +0 -0 ~1 nodes; nodes-rewritten=1"), "\(result)")
        do {
            try FileCheck().match(result.stdout, checks: """
                // CHECK: ir_version 10, opsets ai.onnx=21
                // CHECK: ReduceMean(%x, %{{.*}}) {keepdims = 1} @mean
                // CHECK: QuantizeLinear
                // CHECK: MatMul
                """)
        } catch {
            Issue.record("\(error)\n--- output\n\(result.stdout)")
        }
    }

    @Test func optimizeSummaryShowsTheInsertedStep() throws {
        let dir = try CLI.copyModel("tiny-opt")
        defer { try? FileManager.default.removeItem(atPath: (dir as NSString).deletingLastPathComponent) }
        let result = try CLI.run(["--passes", "quantize", dir + "/model.onnx", "-o", dir + "/out.onnx"])
        #expect(result.status == 0, "\(result)")
        #expect(result.stderr.contains("note: running upgrade-opset{to=21} first: 'quantize' needs opset 21"), "\(result)")
        let line = result.stdout.split(separator: "\n").first { $0.hasPrefix("  upgrade-opset ") }
        #expect(line?.hasSuffix(" (inserted: 'quantize' needs it)") == true, "\(result)")
        #expect(result.stdout.contains("pipeline: quantize\n"), "the pipeline as given: \(result)")
    }

    @Test func optWritesOutputAndReportsErrors() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let input = dir + "/linear.sqir", output = dir + "/out.sqir"
        try Self.linearAtOpset17.write(toFile: input, atomically: true, encoding: .utf8)
        let printed = try CLI.run(["opt", input, "--passes", "dce"])
        #expect(printed.status == 0, "\(printed)")
        #expect(printed.stdout.contains("%w = const f32[4,4] [1.0, 0.0, 0.0,"), "constants print in full: \(printed)")
        #expect(try CLI.run(["opt", input, "--passes", "dce", "-o", output]).status == 0)
        #expect(try String(contentsOfFile: output, encoding: .utf8) == printed.stdout)
        let again = try CLI.run(["opt", output, "--passes", "dce", "-o", output, "--force"])
        #expect(again.status == 2 && again.stderr.contains("is the input"), "\(again)")
        let exists = try CLI.run(["opt", input, "--passes", "dce", "-o", output])
        #expect(exists.status == 1 && exists.stderr.contains("exists; pass --force"), "\(exists)")
        #expect(try CLI.run(["opt", input, "--passes", "dce", "-o", output, "--force"]).status == 0)

        let noPasses = try CLI.run(["opt", input])
        #expect(noPasses.status == 2 && noPasses.stderr.contains("Error: no --passes given"), "\(noPasses)")
        #expect(noPasses.stderr.contains("Usage: sqopt opt FILE.sqir --passes LIST"), "\(noPasses)")
        let typo = try CLI.run(["opt", input, "--passes", "dcee"])
        #expect(typo.status == 2 && typo.stderr.contains("did you mean 'dce'"), "\(typo)")

        // A parse error in the second case keeps the file's line numbers.
        let broken = dir + "/broken.sqir"
        try "graph a() -> () {\n  return\n}\n// -----\ngraph b(%x: f32[2]) -> (%y: f32[2]) {\n  %y = Relu(%x\n  return %y\n}\n"
            .write(toFile: broken, atomically: true, encoding: .utf8)
        let bad = try CLI.run(["opt", broken, "--passes", "dce", "--split-input-file"])
        #expect(bad.status == 1, "\(bad)")
        #expect(bad.stderr.contains("\(broken):7:"), "line 7 of the file, not of the case: \(bad)")
        #expect(bad.stderr.contains("note: in the case at \(broken):5"), "\(bad)")
    }
}
