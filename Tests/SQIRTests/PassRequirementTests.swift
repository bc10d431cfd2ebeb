import Foundation
import Testing
import SQIR

/// Needs opset 21 (like quantize), only when the graph has a Relu (like quantize, which needs
/// it only when it has something to quantize).
struct NeedsOpset21: Pass {
    static let name = "needs-opset-21"
    static let summary = "Requires opset 21"
    static let description = "For testing requirements."
    init(options: PassOptions) {}
    func requirements(for model: Model) -> [PassRequirement] {
        model.graph.nodes.contains { $0.isOp("Relu") } ? [.minimumOpset(21)] : []
    }
    func run(on model: Model, context: PassContext) throws -> PassResult {
        let opset = model.opsetVersion("") ?? 0
        guard opset >= 21 || !model.graph.nodes.contains(where: { $0.isOp("Relu") }) else {
            throw IRError(reason: "ran at opset \(opset)")
        }
        return .unchanged
    }
}

/// Provides `.minimumOpset(n)` by setting the opset import (a stand-in for upgrade-opset).
struct SetOpset: Pass {
    static let name = "set-opset"
    static let summary = "Sets the opset"
    static let description = "For testing requirements."
    static let to = PassOption("to", default: 1, help: "the opset")
    static let options = [to.declaration]
    static func options(providing requirement: PassRequirement) -> PassOptions? {
        guard case .minimumOpset(let version) = requirement else { return nil }
        return PassOptions().setting(to, version)
    }
    let version: Int
    init(options: PassOptions) { version = options[Self.to] }
    func run(on model: Model, context: PassContext) throws -> PassResult {
        model.setOpsetVersion(version)
        return PassResult(changed: true)
    }
}

/// `Pass.requirements(for:)` and `Pass.options(providing:)`: the manager runs the provider as
/// a step of its own, visible like any pass.
@Suite struct PassRequirementTests {
    static let registry = PassRegistry().registering(NeedsOpset21.self).registering(SetOpset.self)
    static let relu = """
        graph g(%x: f32[2]) -> (%y: f32[2]) {
          %y = Relu(%x)
          return %y
        }
        """

    @Test func registryFindsTheProvider() {
        #expect(Self.registry.provider(for: .minimumOpset(21))?.description == "set-opset{to=21}")
        #expect(Self.registry.provider(for: .calibrationStatistics) == nil)
        #expect(Self.registry.provides("set-opset", .minimumOpset(18)))
        #expect(!Self.registry.provides("needs-opset-21", .minimumOpset(18)))
    }

    @Test func providerRunsAsItsOwnStepWithANote() throws {
        let model = try IRParser().parseModel(Self.relu)
        var instrumentation = PassInstrumentation()
        instrumentation.printIRAfter = ["set-opset"]
        instrumentation.timePasses = true
        let manager = try PassManager(pipeline: "needs-opset-21", registry: Self.registry, instrumentation: instrumentation)
        var printed = ""
        manager.output = { printed += $0 }
        let context = PassContext()
        let report = try manager.run(on: model, context: context)
        #expect(report.records.map(\.pass) == ["set-opset", "needs-opset-21"])
        #expect(report.records.map(\.requiredBy) == ["needs-opset-21", nil])
        #expect(model.opsetVersion("") == 21)
        #expect(context.diagnostics.map(\.description)
                == ["note: running set-opset{to=21} first: 'needs-opset-21' needs opset 21 (the model imports opset 17)"])
        #expect(printed.contains("// ----- IR after pass 'set-opset' -----\n// ir_version 8, opsets ai.onnx=21\n"), "\(printed)")
        #expect(printed.contains("%  set-opset\n"), "the timing table lists the inserted step: \(printed)")
    }

    @Test func metOrInapplicableRequirementsInsertNothing() throws {
        let upgraded = try IRParser().parseModel("// ir_version 10, opsets ai.onnx=21\n" + Self.relu)
        let noRelu = try IRParser().parseModel(Self.relu.replacingOccurrences(of: "Relu", with: "Neg"))
        for model in [upgraded, noRelu] {
            let report = try PassManager(pipeline: "needs-opset-21", registry: Self.registry).run(on: model)
            #expect(report.records.map(\.pass) == ["needs-opset-21"])
        }
        #expect(noRelu.opsetVersion("") == 17)
    }

    @Test func unmetRequirementWithoutProviderFailsBeforeThePass() throws {
        let model = try IRParser().parseModel(Self.relu)
        let manager = try PassManager(pipeline: "needs-opset-21", registry: PassRegistry().registering(NeedsOpset21.self))
        do {
            try manager.run(on: model)
            Issue.record("expected a failure")
        } catch {
            #expect("\(error)" == "pass 'needs-opset-21' cannot run: 'needs-opset-21' needs opset 21 (the model imports opset 17) and no registered pass provides it")
        }
    }
}

/// `RewritePass`: a pass that is its rules gets `run` and a counter for free.
struct StripNegNeg: RewritePass {
    static let name = "strip-neg-neg"
    static let summary = "Neg(Neg(x)) -> x"
    static let description = "For testing RewritePass."
    let rules = RuleSet([
        // Neg(Neg(x)) -> x
        RewriteRule("Neg(Neg(x)) -> x", .op("Neg", [.op("Neg", [.any("x")])])) { m, _ in [m["x"]] },
    ])
    init(options: PassOptions) {}
}

@Suite struct RewritePassTests {
    @Test func defaultRunCountsRewrites() throws {
        #expect(StripNegNeg.statistics.map(\.name) == ["rewrites"])
        let registry = PassRegistry().registering(StripNegNeg.self)
        #expect(registry.info(named: "strip-neg-neg")?.statistics.map(\.name) == ["rewrites"])
        let model = try IRParser().parseModel(negationText)
        let report = try PassManager(pipeline: "strip-neg-neg,strip-neg-neg", registry: registry).run(on: model)
        #expect(report.records.map(\.result.changed) == [true, false])
        #expect(report.records.map { $0.result.statistics[counter: "rewrites"] } == [1, 0])
        #expect(IRPrinter().print(model.graph).contains("%y: f32[2] = Relu(%x) @r"))
    }

    @Test func mappingFloatsKeepsTheDtype() throws {
        let half = try #require(Tensor(shape: [2], values: [floatToHalf(4), floatToHalf(-0.5)] as [UInt16])
            .reinterpreted(as: .float16).mappingFloats { 1 / $0 })
        #expect(half.dtype == .float16 && half.elements(as: UInt16.self) == [0x3400, 0xC000])
        let float = try #require(Tensor(shape: [], values: [Float(1e-39)]).mappingFloats { 1 / $0 })
        #expect(float.dtype == .float && float.elements(as: Float.self) == [.infinity], "overflow rounds to inf")
        #expect(Tensor(shape: [], values: [Int64(2)]).mappingFloats { 1 / $0 } == nil)
        let bf16 = try #require(Tensor(shape: [1], values: [UInt16(0x4080)]).reinterpreted(as: .bfloat16).mappingFloats { 1 / $0 })
        #expect(bf16.elements(as: UInt16.self) == [0x3E80], "bfloat16 1/4 = 0.25")
    }
}

extension Tensor {
    /// The same bytes read as another dtype of the same size (test helper).
    func reinterpreted(as dtype: DType) throws -> Tensor {
        try Tensor(dtype: dtype, shape: shape, storage: storage)
    }
}
