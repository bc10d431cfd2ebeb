import Foundation
import SQIR
import Testing
@testable import SQPasses

/// smooth and quantize on float16 / bfloat16 graphs: rewritten weights, norm parameters and
/// Q/DQ scales stay in the graph's float type; values pushed past float16's range by smoothing
/// are clamped to ±65504 and reported.
@Suite struct Float16SmoothQuantTests {
    /// upgrade-opset provides the opset 21 quantize requires.
    static let registry = PassRegistry().registering(Smooth.self).registering(Quantize.self).registering(UpgradeOpset.self)

    /// `Mul(x, γ) → MatMul(·, W)` in `type`; W's row 0 holds `big` (float16 bits).
    static func model(_ type: String, big: String) throws -> Model {
        let one = type == "f16" ? "0x3c00" : "0x3f80", half = type == "f16" ? "0x3800" : "0x3f00"
        return try IRParser().parseModel("""
            graph half_linear(%x: \(type)[t,2]) -> (%q: \(type)[t,2]) {
              %gamma = const \(type)[2] [\(one), \(one)]
              %w = const \(type)[2,2] [\(big), \(one), \(half), \(one)]
              %h = Mul(%x, %gamma) @norm
              %q = MatMul(%h, %w) @q
              return %q
            }
            """)
    }

    static func run(_ model: Model, _ pipeline: String, absMax: [Float]) throws -> PassContext {
        let context = PassContext()
        var stats = CalibrationStatistics(fingerprint: ModelFingerprint.of(model.graph))
        stats["h"] = sqStatistics(rows: [absMax, absMax.map { -$0 }])
        context[CalibrationStatisticsKey.self] = stats
        let manager = try PassManager(pipeline: pipeline, registry: registry)
        manager.instrumentation.verifyEach = true
        try manager.run(on: model, context: context)
        return context
    }

    @Test(arguments: ["f16", "bf16"])
    func scalesAndWeightsKeepTheFloatType(_ type: String) throws {
        let model = try Self.model(type, big: "0x4000")
        let context = try Self.run(model, "smooth{alpha=0.5,lm-head=true},quantize{policy=O3,weights=per-channel,lm-head=true}",
                                   absMax: [16, 1])
        let dtype: DType = type == "f16" ? .float16 : .bfloat16
        // float16: Q/DQ in float16. bfloat16: the layer is a float32 island between Casts
        // (Float32Islands), so its scales and Q/DQ are float32.
        let qdqType: DType = type == "f16" ? .float16 : .float
        let scales = model.graph.nodes.filter { $0.isOp("DequantizeLinear") }.compactMap { $0.input(1)?.constant }
        #expect(!scales.isEmpty && scales.allSatisfy { $0.dtype == qdqType }, "\(scales.map(\.dtype))")
        let casts = model.graph.nodes.filter { $0.isOp("Cast") }.count
        #expect(casts == (type == "f16" ? 0 : 2), "\(model.graph.nodes.map(\.opType))")
        #expect(model.graph.outputs.first?.name == "q", "graph output names never change")
        let nodes = model.graph.nodes.map(\.opType)
        #expect(nodes.contains("QuantizeLinear") && nodes.contains("DequantizeLinear"), "\(nodes)")
        // γ folded: divided by s (s₀ = √16 / √2 · …, anything but 1).
        let gamma = try #require(model.graph.nodes.first { $0.name == "norm" }?.input(1)?.constant)
        #expect(gamma.dtype == dtype && gamma.floatElements()?[0] != 1, "\(gamma)")
        #expect(!context.diagnostics.contains { $0.message.contains("clamped") }, "\(context.diagnostics)")
        // The weight's DequantizeLinear is typed (the activation's only when x was).
        let typed = model.graph.nodes.filter { $0.isOp("DequantizeLinear") }.compactMap { $0.output(0)?.type }
        #expect(!typed.isEmpty && typed.allSatisfy { $0.dtype == qdqType }, "\(typed)")
    }

    /// W[0,0] = 60000 (float16 0x7b53) and max|X₀| = 10⁶: s₀ = √(10⁶/60000) ≈ 4.1, so the
    /// smoothed weight would be ≈ 245000, beyond float16: clamped to 65504, with a warning.
    @Test func smoothingClampsFloat16OverflowAndSaysSo() throws {
        let model = try Self.model("f16", big: "0x7b53")
        let context = try Self.run(model, "smooth{alpha=0.5,lm-head=true}", absMax: [1_000_000, 1])
        let w = try #require(model.graph.nodes.first { $0.name == "q" }?.input(1)?.constant)
        #expect(w.dtype == .float16)
        let values = try #require(w.floatElements())
        #expect(values[0] == 65504, "\(values)")
        #expect(values.allSatisfy { $0.isFinite }, "\(values)")
        let warning = context.diagnostics.first { $0.severity == .warning && $0.message.contains("clamped") }
        #expect(warning?.message.contains("1 smoothed weight/norm element") == true, "\(context.diagnostics)")
    }
}
