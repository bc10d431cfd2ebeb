import Foundation
import SQIR
import Testing
@testable import SQPasses

/// Compiler-style tests: IR text in, pipeline, FileCheck directives on the printed IR out.
/// `// RUN: <pipeline>` sets the pipeline; `// STATS: %v = [a, b, ...]` gives value v the
/// per-channel max |x| a, b, ... (as if calibrated); `expected-error {{…}}` expects a failure.
@Suite struct SmoothQuantIRTests {
    /// upgrade-opset provides the opset 21 quantize requires.
    static let registry = PassRegistry().registering(Calibrate.self).registering(Smooth.self).registering(Quantize.self)
        .registering(UpgradeOpset.self)

    static func run(_ testCase: String) throws {
        let lines = testCase.split(separator: "\n", omittingEmptySubsequences: false)
        let ir = lines.filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("//") }.joined(separator: "\n")
        let pipeline = try #require(lines.first { $0.contains("// RUN:") }.map {
            String($0.split(separator: "RUN:", maxSplits: 1)[1]).trimmingCharacters(in: .whitespaces)
        })
        let model = try IRParser().parseModel(ir)
        let context = PassContext()
        var stats = CalibrationStatistics(fingerprint: ModelFingerprint.of(model.graph))
        var hasStats = false
        for line in lines where line.contains("// STATS:") {
            let body = String(line.split(separator: "STATS:", maxSplits: 1)[1])
            let parts = body.split(separator: "=", maxSplits: 1)
            let name = parts[0].trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "%", with: "")
            let values = parts[1].trimmingCharacters(in: CharacterSet(charactersIn: " []"))
                .split(separator: ",").compactMap { Float($0.trimmingCharacters(in: .whitespaces)) }
            stats[name] = sqStatistics(rows: [values, values.map { -$0 }])
            hasStats = true
        }
        if hasStats { context[CalibrationStatisticsKey.self] = stats }
        let manager = try PassManager(pipeline: pipeline, registry: registry)
        manager.instrumentation.verifyEach = true
        let expectedErrors = FileCheck.expectedErrors(in: testCase)
        do {
            try manager.run(on: model, context: context)
        } catch {
            guard let expected = expectedErrors.first else { throw error }
            #expect("\(error)".contains(expected), "error '\(error)' does not contain '\(expected)'")
            return
        }
        #expect(expectedErrors.isEmpty, "expected an error: \(expectedErrors)")
        let printed = IRPrinter().print(model)
        do {
            try FileCheck().match(printed, checks: testCase)
        } catch {
            Issue.record("\(error)\n--- output ---\n\(printed)")
        }
    }

    @Test(arguments: FileCheck.splitCases(smoothCases))
    func smooth(_ testCase: String) throws { try Self.run(testCase) }

    @Test(arguments: FileCheck.splitCases(quantizeCases))
    func quantize(_ testCase: String) throws { try Self.run(testCase) }
}

// s = sqrt(max|X|) / sqrt(max|W row|): with every weight row's max 1, s = [4, 2, 1, 1].
private let smoothCases = #"""
// RUN: smooth{alpha=0.5,lm-head=true}
// STATS: %ln = [16, 4, 0, 1]
graph layer_norm_folds(%x: f32[t,4]) -> (%q: f32[t,2], %k: f32[t,2]) {
  %gamma = const f32[4] [1.0, 2.0, 3.0, 4.0]
  %beta = const f32[4] [4.0, 4.0, 4.0, 4.0]
  %wq = const f32[4,2] [1.0, 0.5, -1.0, 0.0, 1.0, 1.0, 0.0, 1.0]
  %wk = const f32[4,2] [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
  %ln = LayerNormalization(%x, %gamma, %beta) {axis = -1} @ln
  %q = MatMul(%ln, %wq) @q
  %k = MatMul(%ln, %wk) @k
  return %q, %k
}
// CHECK-LABEL: graph layer_norm_folds
// CHECK: %wq_smoothed = const f32[4,2] [4.0, 2.0, -2.0, 0.0, 1.0, 1.0, 0.0, 1.0]
// CHECK: %wk_smoothed = const f32[4,2] [2.0, 2.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5]
// CHECK: %gamma_smoothed = const f32[4] [0.25, 1.0, 3.0, 4.0]
// CHECK: %beta_smoothed = const f32[4] [1.0, 2.0, 4.0, 4.0]
// CHECK: LayerNormalization(%x, %gamma_smoothed, %beta_smoothed)
// CHECK-NOT: Mul
// CHECK: MatMul(%ln, %wq_smoothed)
// CHECK: MatMul(%ln, %wk_smoothed)
// -----
// RUN: smooth{lm-head=true}
// STATS: %ln = [16, 4, 0, 1]
graph dont_fold_post_layer_norm(%x: f32[t,4]) -> (%q: f32[t,2], %r: f32[t,4]) {
  %gamma = const f32[4] [1.0, 2.0, 3.0, 4.0]
  %wq = const f32[4,2] [1.0, 0.5, -1.0, 0.0, 1.0, 1.0, 0.0, 1.0]
  %ln = LayerNormalization(%x, %gamma) @ln
  %q = MatMul(%ln, %wq) @q
  %r = Add(%ln, %x) @residual
  return %q, %r
}
// CHECK-LABEL: graph dont_fold_post_layer_norm
// CHECK: %ln_smooth_scale = const f32[4] [0.25, 0.5, 1.0, 1.0]
// CHECK: LayerNormalization(%x, %gamma)
// CHECK-NEXT: %[[Y:[a-z_]+]] = Mul(%ln, %ln_smooth_scale) @ln_smooth
// CHECK-NEXT: MatMul(%[[Y]], %wq_smoothed) @q
// CHECK-NEXT: Add(%ln, %x) @residual
// -----
// RUN: smooth{lm-head=true}
// STATS: %ln = [16, 4, 0, 1]
graph dont_fold_graph_output(%x: f32[t,4]) -> (%q: f32[t,2], %ln: f32[t,4]) {
  %gamma = const f32[4] [1.0, 2.0, 3.0, 4.0]
  %wq = const f32[4,2] [1.0, 0.5, -1.0, 0.0, 1.0, 1.0, 0.0, 1.0]
  %ln = LayerNormalization(%x, %gamma) @ln
  %q = MatMul(%ln, %wq) @q
  return %q, %ln
}
// CHECK-LABEL: graph dont_fold_graph_output
// CHECK: LayerNormalization(%x, %gamma)
// CHECK: Mul(%ln, %ln_smooth_scale)
// -----
// RUN: smooth{alpha=0.5,lm-head=true}
// STATS: %n = [16, 4, 0, 1]
graph rms_norm_and_decomposed_gamma(%x: f32[t,4]) -> (%q: f32[t,2], %g: f32[t,2]) {
  %gamma = const f32[4] [1.0, 2.0, 3.0, 4.0]
  %gamma2 = const f32[1,4] [2.0, 2.0, 2.0, 2.0]
  %w = const f32[4,2] [1.0, 0.5, -1.0, 0.0, 1.0, 1.0, 0.0, 1.0]
  %n = SimplifiedLayerNormalization(%x, %gamma) {axis = -1} @rms
  %q = MatMul(%n, %w) @q
  %y = Div(%x, %x) @normalize
  %m = Mul(%gamma2, %y) @gamma_mul
  %g = MatMul(%m, %w) @gate
  return %q, %g
}
// STATS: %m = [1, 1, 1, 4]
// CHECK-LABEL: graph rms_norm_and_decomposed_gamma
// CHECK: %gamma_smoothed = const f32[4] [0.25, 1.0, 3.0, 4.0]
// CHECK: %gamma2_smoothed = const f32[1,4] [2.0, 2.0, 2.0, 1.0]
// CHECK: SimplifiedLayerNormalization(%x, %gamma_smoothed)
// CHECK: Mul(%gamma2_smoothed, %y) @gamma_mul
// -----
// RUN: smooth{lm-head=false}
// STATS: %ln = [16, 4, 0, 1]
graph dont_smooth_lm_head(%x: f32[t,4]) -> (%logits: f32[t,2]) {
  %gamma = const f32[4] [1.0, 2.0, 3.0, 4.0]
  %w = const f32[4,2] [1.0, 0.5, -1.0, 0.0, 1.0, 1.0, 0.0, 1.0]
  %bias = const f32[2] [1.0, 1.0]
  %ln = LayerNormalization(%x, %gamma) @final_norm
  %h = MatMul(%ln, %w) @lm_head
  %logits = Add(%h, %bias) @lm_head_bias
  return %logits
}
// CHECK-LABEL: graph dont_smooth_lm_head
// CHECK-NOT: smoothed
// CHECK: LayerNormalization(%x, %gamma)
// CHECK-NEXT: MatMul(%ln, %w) @lm_head
// -----
// RUN: smooth
// STATS: %ln = [4, 4]
// STATS: %m = [16, 1]
// STATS: %r = [9, 1]
graph default_scope_folds_without_mul(%x: f32[t,2]) -> (%z: f32[t,2]) {
  %gamma = const f32[2] [1.0, 1.0]
  %wg = const f32[2,2] [1.0, 0.0, 0.0, 1.0]
  %wu = const f32[2,2] [1.0, 0.0, 0.0, 1.0]
  %wd = const f32[2,2] [1.0, 0.0, 0.0, 1.0]
  %wo = const f32[2,2] [1.0, 0.0, 0.0, 1.0]
  %ln = LayerNormalization(%x, %gamma) @ln
  %g = MatMul(%ln, %wg) @gate
  %u = MatMul(%ln, %wu) @up
  %a = Sigmoid(%g) @act
  %m = Mul(%a, %u) @gating
  %y = MatMul(%m, %wd) @down
  %r = Relu(%y) @relu
  %z = MatMul(%r, %wo) @out
  return %z
}
// down's input folds into up's output channels (s = [4, 1]: up's output column 0 x 1/4, after the norm group's s = [2, 2]); out's
// input comes from a Relu, which cannot absorb 1/s: scope=foldable leaves it, no Mul.
// CHECK-LABEL: graph default_scope_folds_without_mul
// CHECK: %wd_smoothed = const f32[2,2] [4.0, 0.0, 0.0, 1.0]
// CHECK: %wu_smoothed_smoothed = const f32[2,2] [0.5, 0.0, 0.0, 2.0]
// CHECK: MatMul(%ln, %wu_smoothed_smoothed) @up
// CHECK: MatMul(%m, %wd_smoothed) @down
// CHECK-NEXT: Relu(%y) @relu
// CHECK-NEXT: MatMul(%r, %wo) @out
// -----
// RUN: smooth
graph needs_statistics(%x: f32[t,4]) -> (%q: f32[t,2]) {
  %gamma = const f32[4] [1.0, 2.0, 3.0, 4.0]
  %wq = const f32[4,2] [1.0, 0.5, -1.0, 0.0, 1.0, 1.0, 0.0, 1.0]
  %ln = LayerNormalization(%x, %gamma) @ln
  %q = MatMul(%ln, %wq) @q
  return %q
}
// expected-error {{smooth needs calibration statistics}}
"""#

private let quantizeCases = #"""
// RUN: quantize{policy=O3,weights=per-tensor,target=qdq,lm-head=false}
// STATS: %x = [127, 12.7, 1.27, 0.0]
graph static_per_tensor(%x: f32[t,4]) -> (%y: f32[t,2]) {
  %w = const f32[4,2] [1.27, 0.5, -1.0, 0.0, 1.0, 1.0, 0.0, 1.0]
  %h = MatMul(%x, %w) @fc1
  %r = Relu(%h) @relu
  %y = MatMul(%r, %w) @lm_head
  return %y
}
// CHECK: ir_version 10, opsets ai.onnx=21
// CHECK-LABEL: graph static_per_tensor
// CHECK: %w_quantized = const i8[4,2] [127, 50, -100, 0, 100, 100, 0, 100]
// CHECK: %w_scale = const f32[] [0.01]
// CHECK: %x_scale = const f32[] [1.0]
// CHECK: %[[WDQ:[a-zA-Z0-9_/]+]]{{.*}}DequantizeLinear(%w_quantized, %w_scale, %sq_int8_zero_point) @fc1/weight/DequantizeLinear
// CHECK-NEXT: %[[Q:[a-zA-Z0-9_/]+]]{{.*}}QuantizeLinear(%x, %x_scale, %sq_int8_zero_point)
// CHECK-NEXT: %[[DQ:[a-zA-Z0-9_/]+]]{{.*}}DequantizeLinear(%[[Q]], %x_scale, %sq_int8_zero_point)
// CHECK-NEXT: MatMul(%[[DQ]], %[[WDQ]]) @fc1
// CHECK-NOT: QuantizeLinear
// CHECK: MatMul(%r, %w) @lm_head
// -----
// RUN: quantize{policy=O1,weights=per-channel,lm-head=true,target=qdq}
graph per_token_dynamic(%x: f32[t,4]) -> (%y: f32[t,2], %z: f32[t,2]) {
  %w = const f32[4,2] [1.27, 0.5, -1.0, 0.0, 1.0, 1.0, 0.0, 1.0]
  %y = MatMul(%x, %w) @a
  %z = MatMul(%x, %w) @b
  %unused = Relu(%y)
  return %y, %z
}
// CHECK-LABEL: graph per_token_dynamic
// CHECK: %w_quantized = const i8[4,2] [127, 64, -100, 0, 100, 127, 0, 127]
// CHECK: %w_scale = const f32[2] [0.01, 0.007874016]
// CHECK-NOT: %w_quantized_1
// CHECK: %[[WDQ:[a-zA-Z0-9_/]+]]{{.*}}DequantizeLinear(%w_quantized, %w_scale, %w_zero_point) {axis = 1} @a/weight/DequantizeLinear
// CHECK: Abs(%x)
// CHECK-NEXT: ReduceMax(%{{.*}}, %sq_axes_m1) {keepdims = 1}
// CHECK-NEXT: Div(
// CHECK-NEXT: %[[S:[a-zA-Z0-9_/]+]] = Max(%{{.*}}, %sq_min_scale)
// CHECK-NEXT: QuantizeLinear(%x, %[[S]]) {axis = -1, block_size = 4, output_dtype = 3}
// CHECK-NEXT: %[[DQ:[a-zA-Z0-9_/]+]]{{.*}}DequantizeLinear(%{{.*}}, %[[S]]) {axis = -1, block_size = 4}
// CHECK-NEXT: MatMul(%[[DQ]], %[[WDQ]]) @a
// CHECK-NEXT: MatMul(%[[DQ]], %[[WDQ]]) @b
// -----
// RUN: quantize{policy=O2,bmm=true,lm-head=true,target=qdq}
graph per_tensor_dynamic_with_bmm(%q: f32[b,t,4], %k: f32[b,4,t]) -> (%s: f32[b,t,t]) {
  %s = MatMul(%q, %k) @scores
  return %s
}
// CHECK-LABEL: graph per_tensor_dynamic_with_bmm
// CHECK: ReduceMax(%{{.*}}) {keepdims = 0}
// CHECK: QuantizeLinear(%q, %{{.*}}, %sq_int8_zero_point)
// CHECK: ReduceMax(%{{.*}}) {keepdims = 0}
// CHECK: QuantizeLinear(%k, %{{.*}}, %sq_int8_zero_point)
// CHECK: MatMul(%{{.*}}, %{{.*}}) @scores
// -----
// RUN: quantize{policy=O3,weights=per-tensor,lm-head=false}
// STATS: %x = [127, 12.7, 1.27, 0.0]
graph onnxruntime_static(%x: f32[t,4]) -> (%y: f32[t,2]) {
  %w = const f32[4,2] [1.27, 0.5, -1.0, 0.0, 1.0, 1.0, 0.0, 1.0]
  %h = MatMul(%x, %w) @fc1
  %r = Relu(%h) @relu
  %y = MatMul(%r, %w) @lm_head
  return %y
}
// CHECK-LABEL: graph onnxruntime_static
// CHECK: %w_quantized = const i8[4,2] [127, 50, -100, 0, 100, 100, 0, 100]
// CHECK: %x_scale = const f32[] [1.0]
// CHECK: %sq_uint8_zero_point = const u8[] [128]
// CHECK: DequantizeLinear(%w_quantized, %w_scale, %sq_int8_zero_point) @fc1/weight/DequantizeLinear
// CHECK-NEXT: %[[Q:[a-zA-Z0-9_/]+]]{{.*}}QuantizeLinear(%x, %x_scale, %sq_uint8_zero_point)
// CHECK-NEXT: %[[DQ:[a-zA-Z0-9_/]+]]{{.*}}DequantizeLinear(%[[Q]], %x_scale, %sq_uint8_zero_point)
// CHECK-NEXT: MatMul(%[[DQ]], %{{.*}}) @fc1
// CHECK-NOT: Mul(
// CHECK: MatMul(%r, %w) @lm_head
// -----
// RUN: quantize{policy=O1,weights=per-channel,lm-head=true}
graph onnxruntime_per_token(%x: f32[t,4]) -> (%y: f32[t,2], %z: f32[t,2]) {
  %w = const f32[4,2] [1.27, 0.5, -1.0, 0.0, 1.0, 1.0, 0.0, 1.0]
  %y = MatMul(%x, %w) @a
  %z = MatMul(%x, %w) @b
  return %y, %z
}
// CHECK-LABEL: graph onnxruntime_per_token(%x: f32[t,4]) -> (%y: f32[t,2], %z: f32[t,2])
// CHECK: %sq_unit_scale = const f32[] [1.0]
// CHECK-NOT: Abs(
// CHECK: %[[H:[a-zA-Z0-9_/]+]] = ReduceMax(%x, %sq_axes_m1) {keepdims = 1}
// CHECK-NEXT: %[[L:[a-zA-Z0-9_/]+]] = ReduceMin(%x, %sq_axes_m1) {keepdims = 1}
// CHECK-NEXT: %[[N:[a-zA-Z0-9_/]+]] = Neg(%[[L]])
// CHECK-NEXT: %[[M:[a-zA-Z0-9_/]+]] = Max(%[[H]], %[[N]])
// CHECK-NEXT: Div(%[[M]], %sq_127)
// CHECK-NEXT: %[[S:[a-zA-Z0-9_/]+]] = Max(%{{.*}}, %sq_min_scale)
// CHECK-NEXT: %[[SH:[a-zA-Z0-9_/]+]] = Shape(%[[S]])
// CHECK-NEXT: %[[ZP:[a-zA-Z0-9_/]+]] = Expand(%sq_uint8_zero_point, %[[SH]])
// CHECK-NOT: Div(%x
// CHECK-NEXT: %[[Q:[a-zA-Z0-9_/]+]]{{.*}}QuantizeLinear(%x, %[[S]], %[[ZP]]) {axis = -1, block_size = 4}
// CHECK-NEXT: %[[DQ:[a-zA-Z0-9_/]+]]{{.*}}DequantizeLinear(%[[Q]], %sq_unit_scale, %sq_uint8_zero_point)
// CHECK-NEXT: %[[A:[a-zA-Z0-9_/]+]]{{.*}}MatMul(%[[DQ]], %{{.*}}) @a
// CHECK-NEXT: %y: f32[t,2] = Mul(%[[A]], %[[S]]) @a/ApplyScale
// CHECK-NEXT: %[[B:[a-zA-Z0-9_/]+]]{{.*}}MatMul(%[[DQ]], %{{.*}}) @b
// CHECK-NEXT: %z: f32[t,2] = Mul(%[[B]], %[[S]]) @b/ApplyScale
// CHECK: return %y, %z
// -----
// RUN: quantize{policy=O2,lm-head=true}
graph onnxruntime_gemm_bias(%x: f32[t,4]) -> (%y: f32[t,2]) {
  %w = const f32[2,4] [1.27, -1.0, 1.0, 0.0, 0.5, 0.0, 1.0, 1.0]
  %c = const f32[2] [0.25, -0.5]
  %y = Gemm(%x, %w, %c) {beta = 2.0, transB = 1} @fc
  return %y
}
// CHECK-LABEL: graph onnxruntime_gemm_bias
// CHECK: ReduceMax(%x) {keepdims = 0}
// CHECK-NEXT: ReduceMin(%x) {keepdims = 0}
// CHECK: %[[S:[a-zA-Z0-9_/]+]]{{.*}} = Max(%{{.*}}, %sq_min_scale)
// CHECK-NEXT: Div(%x, %[[S]])
// CHECK: %[[CB:[a-zA-Z0-9_/]+]] = Mul(%c, %fc_beta) @fc/bias/Beta
// CHECK-NEXT: %[[G:[a-zA-Z0-9_/]+]]{{.*}}Gemm(%{{.*}}, %{{.*}}) {transB = 1} @fc
// CHECK-NEXT: %[[M:[a-zA-Z0-9_/]+]]{{.*}} = Mul(%[[G]], %[[S]]) @fc/ApplyScale
// CHECK-NEXT: %y: f32[t,2] = Add(%[[M]], %[[CB]]) @fc/Bias
// -----
// RUN: quantize{policy=O3}
graph static_needs_statistics(%x: f32[t,4]) -> (%y: f32[t,2]) {
  %w = const f32[4,2] [1.27, 0.5, -1.0, 0.0, 1.0, 1.0, 0.0, 1.0]
  %h = MatMul(%x, %w) @fc1
  %y = Relu(%h)
  return %y
}
// expected-error {{needs calibration statistics}}
"""#
