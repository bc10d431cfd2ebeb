import Foundation
import SQIR
import SQONNX
import SQRuntime
import Testing

/// The ONNX backend node tests for every op the interpreter claims: each test whose ops
/// are all claimed runs through an `ExecutionPlan` and is compared with the stored
/// outputs (rtol 1e-3, atol 1e-5). Prints a per-op table and, last,
/// `conformance: N passed, M failed, K skipped`. A skip is a test the interpreter
/// refuses with a clear "unsupported ..." error (an element type or attribute it does
/// not implement) or whose data uses an element type sqopt does not know.
@Suite struct ConformanceTests {
    /// Ops claimed conformant, as `OpType` (default domain).
    static let claimedOps: Set<String> = [
        "Abs", "Acos", "Acosh", "Add", "And", "ArgMax", "ArgMin", "Asin", "Asinh", "Atan", "Atanh",
        "BitShift", "BitwiseAnd", "BitwiseNot", "BitwiseOr", "BitwiseXor",
        "Cast", "CastLike", "Ceil", "Celu", "Clip", "Concat", "Constant", "ConstantOfShape", "Cos", "Cosh", "CumSum",
        "DequantizeLinear", "Div", "Dropout", "DynamicQuantizeLinear", "Einsum", "Elu", "Equal", "Erf", "Exp", "Expand",
        "Flatten", "Floor", "Gather", "GatherElements", "GatherND", "Gelu", "Gemm", "Greater", "GreaterOrEqual",
        "HardSigmoid", "HardSwish", "Identity", "IsInf", "IsNaN", "LayerNormalization", "LeakyRelu", "Less", "LessOrEqual",
        "Log", "LogSoftmax", "MatMul", "MatMulInteger", "Max", "Mean", "Min", "Mish", "Mod", "Mul",
        "Neg", "NonZero", "Not", "Or", "Pad", "Pow", "QLinearMatMul", "QuantizeLinear",
        "RMSNormalization", "Range", "Reciprocal", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp",
        "ReduceMax", "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare",
        "Relu", "Reshape", "Round", "ScatterElements", "ScatterND", "Selu", "Shape", "Sigmoid", "Sign", "Sin", "Sinh", "Size", "Slice",
        "Softmax", "Softplus", "Softsign", "Split", "Sqrt", "Squeeze", "Sub", "Sum", "Tan", "Tanh",
        "ThresholdedRelu", "Tile", "Transpose", "Trilu", "Unsqueeze", "Where", "Xor",
    ]

    enum Outcome {
        case passed
        case failed(String)
        case skipped(String)
    }

    struct CaseResult {
        let name: String
        let ops: [String]
        let outcome: Outcome
    }

    /// The ops torch.onnx (TorchScript and dynamo) and optimum write for BERT, GPT-2 and
    /// LLaMA-style graphs at opsets 14–21 (docs/interpreter.md, "Exporter coverage"). Every
    /// one is claimed, so its node tests run above.
    static let exporterOps: Set<String> = [
        "Abs", "Add", "And", "ArgMax", "Cast", "CastLike", "Concat", "Constant", "ConstantOfShape", "Cos", "CumSum",
        "Div", "Dropout", "Einsum", "Equal", "Erf", "Exp", "Expand", "Gather", "GatherElements", "GatherND", "Gelu", "Gemm",
        "Greater", "GreaterOrEqual", "Identity", "IsInf", "IsNaN", "LayerNormalization", "Less", "LessOrEqual",
        "MatMul", "Max", "Min", "Mul", "Neg", "NonZero", "Not", "Or", "Pow", "Range", "Reciprocal",
        "ReduceMax", "ReduceMean", "ReduceSum", "Reshape", "ScatterElements", "ScatterND", "Shape", "Sigmoid", "Sin",
        "Size", "Slice", "Softmax", "Split", "Sqrt", "Squeeze", "Sub", "Tanh", "Transpose", "Trilu", "Unsqueeze", "Where",
    ]

    @Test func exporterOpsAreClaimed() {
        #expect(Self.exporterOps.subtracting(Self.claimedOps).isEmpty, "exporter ops without node tests: \(Self.exporterOps.subtracting(Self.claimedOps).sorted())")
        #expect(Self.exporterOps.subtracting(ExecutionPlan.supportedOperators).isEmpty)
    }

    @Test func claimedOpsAreSupported() {
        let supported = Set(ExecutionPlan.supportedOperators)
        #expect(Self.claimedOps.subtracting(supported).isEmpty, "claimed but not in the op table: \(Self.claimedOps.subtracting(supported).sorted())")
        #expect(Self.claimedOps.count >= 45)
    }

    @Test func onnxBackendNodeTests() throws {
        guard let root = NodeTestData.directory() else {
            Issue.record("the ONNX backend node tests are missing: run tools/setup.sh (it copies them to third_party_data/onnx-node-tests)")
            return
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: root.path).filter { $0.hasPrefix("test_") }.sorted()
        #expect(names.count > 1000, "expected the full node test set in \(root.path)")
        var results: [CaseResult] = []
        var outOfScope = 0
        let started = Date()
        for name in names {
            if let result = Self.runCase(root.appendingPathComponent(name), name: name) {
                results.append(result)
            } else {
                outOfScope += 1
            }
        }
        let seconds = Date().timeIntervalSince(started)
        let report = Self.report(results, outOfScope: outOfScope, seconds: seconds)
        print(report)
        let failed = results.filter { if case .failed = $0.outcome { return true } else { return false } }
        let failureList = failed.map { r -> String in
            if case .failed(let why) = r.outcome { return "  \(r.name): \(why)" }
            return ""
        }.joined(separator: "\n")
        #expect(failed.isEmpty, "\(failed.count) conformance failures:\n\(failureList)")
    }

    /// Runs one test folder; nil when it uses an op that is not claimed.
    static func runCase(_ folder: URL, name: String) -> CaseResult? {
        let model: Model
        do {
            model = try ONNXDecoder().decode(file: folder.appendingPathComponent("model.onnx").path)
        } catch {
            // Models sqopt cannot even read (float8, int4, sequences...): not in scope
            // unless the name says it tests a claimed op.
            guard let op = claimedOps.first(where: { name.hasPrefix("test_" + snakeCase($0) + "_") || name == "test_" + snakeCase($0) }) else { return nil }
            return CaseResult(name: name, ops: [op], outcome: .skipped("the model does not decode: \(error)"))
        }
        let ops = Array(Set(model.graph.nodes.map { $0.qualifiedOpType })).sorted()
        guard !ops.isEmpty, ops.allSatisfy({ claimedOps.contains($0) }), model.graph.nodes.allSatisfy({ $0.subgraphs.isEmpty }) else {
            return nil
        }
        func result(_ outcome: Outcome) -> CaseResult { CaseResult(name: name, ops: ops, outcome: outcome) }

        let dataSet = folder.appendingPathComponent("test_data_set_0")
        let initializerNames = Set(model.graph.initializers.map(\.name))
        let graphInputs = model.graph.inputs.filter { !initializerNames.contains($0.name) }
        var inputs: [String: Tensor] = [:]
        var expected: [(String, Tensor)] = []
        do {
            for (i, input) in graphInputs.enumerated() {
                let url = dataSet.appendingPathComponent("input_\(i).pb")
                guard FileManager.default.fileExists(atPath: url.path) else { continue }  // optional input left out
                inputs[input.name] = try NodeTestData.decodeTensor(at: url)
            }
            for (i, output) in model.graph.outputs.enumerated() {
                let url = dataSet.appendingPathComponent("output_\(i).pb")
                expected.append((output.name, try NodeTestData.decodeTensor(at: url)))
            }
        } catch {
            return result(.skipped("test data does not decode: \(error)"))
        }

        do {
            let plan = try ExecutionPlan(model: model)
            let outputs = try plan.run(inputs: inputs)
            for (outputName, want) in expected {
                guard let got = outputs[outputName] else { return result(.failed("output '\(outputName)' missing")) }
                if let why = mismatch(got, want) { return result(.failed("output '\(outputName)': \(why)")) }
            }
            return result(.passed)
        } catch let error as IRError where error.reason.hasPrefix("unsupported") {
            return result(.skipped(error.description))
        } catch {
            return result(.failed("\(error)"))
        }
    }

    /// `ReduceMean` -> `reduce_mean`, as the node test folders are named.
    static func snakeCase(_ op: String) -> String {
        var out = ""
        for (i, c) in op.enumerated() {
            if c.isUppercase && i > 0 { out += "_" }
            out += c.lowercased()
        }
        return out
    }

    static func report(_ results: [CaseResult], outOfScope: Int, seconds: Double) -> String {
        var perOp: [String: (passed: Int, failed: Int, skipped: Int)] = [:]
        var passed = 0, failed = 0, skipped = 0
        var failures: [String] = [], skips: [String] = []
        for r in results {
            for op in r.ops {
                var row = perOp[op] ?? (0, 0, 0)
                switch r.outcome {
                case .passed: row.passed += 1
                case .failed: row.failed += 1
                case .skipped: row.skipped += 1
                }
                perOp[op] = row
            }
            switch r.outcome {
            case .passed: passed += 1
            case .failed(let why): failed += 1; failures.append("  FAIL \(r.name): \(why)")
            case .skipped(let why): skipped += 1; skips.append("  skip \(r.name): \(why)")
            }
        }
        var lines = ["ONNX backend node tests, claimed ops (\(claimedOps.count)); a test counts once per op it uses:",
                     "  op                          passed  failed  skipped"]
        for op in claimedOps.sorted() {
            let row = perOp[op] ?? (0, 0, 0)
            lines.append("  " + op.padding(toLength: 26, withPad: " ", startingAt: 0)
                         + String(format: "%8d%8d%9d", row.passed, row.failed, row.skipped))
        }
        lines.append("\(outOfScope) tests use ops that are not claimed (not run); \(String(format: "%.1f", seconds)) s")
        lines += failures
        lines += skips
        lines.append("conformance: \(passed) passed, \(failed) failed, \(skipped) skipped")
        return lines.joined(separator: "\n")
    }
}
