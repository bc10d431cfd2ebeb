import Testing
import SQIR
import SQPasses

let canonicalizeNormsCases = """
    // HF LlamaRMSNorm as torch.onnx writes it (Div(1, ·), γ first).
    // CHECK-LABEL: graph rms_div_one
    // CHECK-NOT: Pow
    // CHECK: %y: f32[batch,seq,8] = SimplifiedLayerNormalization(%x, %w) {axis = -1, epsilon = 1e-05, stash_type = 1} @/norm/SimplifiedLayerNormalization
    // CHECK-NEXT: return %y
    graph rms_div_one(%x: f32[batch,seq,8]) -> (%y: f32[batch,seq,8]) {
      %two = const f32[] [2.0]
      %eps = const f32[] [1e-05]
      %one = const f32[] [1.0]
      %w = const f32[8] [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
      %p = Pow(%x, %two) @/norm/Pow
      %m = ReduceMean(%p) {axes = [-1], keepdims = 1} @/norm/ReduceMean
      %a = Add(%m, %eps) @/norm/Add
      %s = Sqrt(%a) @/norm/Sqrt
      %r = Div(%one, %s) @/norm/Div
      %n = Mul(%x, %r) @/norm/Mul
      %y = Mul(%w, %n) @/norm/Mul_1
      return %y
    }

    // -----
    // Reciprocal, x·x, γ last, axes as an input (opset 18), Constant nodes for eps.
    // CHECK-LABEL: graph rms_reciprocal_opset18
    // CHECK: SimplifiedLayerNormalization(%x, %w) {axis = -1, epsilon = 1e-06, stash_type = 1}
    // CHECK-NOT: ReduceMean
    // ir_version 8, opsets ai.onnx=18
    graph rms_reciprocal_opset18(%x: f32[2,8], %residual: f32[2,8]) -> (%y: f32[2,8], %sum: f32[2,8]) {
      %axes = const i64[1] [1]
      %w = const f32[8] <8 elements>
      %eps = Constant() {value = dense<f32[] [1e-06]>}
      %p = Mul(%x, %x)
      %m = ReduceMean(%p, %axes) {keepdims = 1}
      %a = Add(%eps, %m)
      %s = Sqrt(%a)
      %r = Reciprocal(%s)
      %n = Mul(%r, %x)
      %y = Mul(%n, %w)
      %sum = Add(%x, %residual)
      return %y, %sum
    }

    // -----
    // Div(x, sqrt) and rsqrt as Pow(·, -0.5); RMSNormalization at opset 23.
    // CHECK-LABEL: graph rms_forms_opset23
    // CHECK: %y1: f32[4,8] = RMSNormalization(%x, %w) {axis = -1, epsilon = 1e-05, stash_type = 1}
    // CHECK: %y2: f32[4,8] = RMSNormalization(%x, %w) {axis = -1, epsilon = 1e-05, stash_type = 1}
    // ir_version 11, opsets ai.onnx=23
    graph rms_forms_opset23(%x: f32[4,8]) -> (%y1: f32[4,8], %y2: f32[4,8]) {
      %two = const f32[] [2.0]
      %eps = const f32[] [1e-05]
      %half = const f32[] [-0.5]
      %w = const f32[8] <8 elements>
      %p1 = Pow(%x, %two)
      %m1 = ReduceMean(%p1) {axes = [-1]}
      %a1 = Add(%m1, %eps)
      %s1 = Sqrt(%a1)
      %n1 = Div(%x, %s1)
      %y1 = Mul(%n1, %w)
      %p2 = Pow(%x, %two)
      %m2 = ReduceMean(%p2) {axes = [1]}
      %a2 = Add(%m2, %eps)
      %r2 = Pow(%a2, %half)
      %n2 = Mul(%x, %r2)
      %y2 = Mul(%w, %n2)
      return %y1, %y2
    }

    // -----
    // An fp16 model: Cast to float in, Cast back before γ. γ is converted to float.
    // CHECK-LABEL: graph rms_with_casts
    // CHECK: %w_per_channel = const f32[4] [1.0, 2.0, 1.0, 2.0]
    // CHECK: %xf = Cast(%x) {to = 1}
    // CHECK: %[[N:.*]] = SimplifiedLayerNormalization(%xf, %w_per_channel) {axis = -1, epsilon = 1e-05, stash_type = 1} @SimplifiedLayerNormalization
    // CHECK: %y: f16[3,4] = Cast(%[[N]]) {to = 10} @Cast
    graph rms_with_casts(%x: f16[3,4]) -> (%y: f16[3,4]) {
      %two = const f32[] [2.0]
      %eps = const f32[] [1e-05]
      %one = const f32[] [1.0]
      %w = const f16[4] [0x3c00, 0x4000, 0x3c00, 0x4000]
      %xf = Cast(%x) {to = 1}
      %p = Pow(%xf, %two)
      %m = ReduceMean(%p) {axes = [-1], keepdims = 1}
      %a = Add(%m, %eps)
      %s = Sqrt(%a)
      %r = Div(%one, %s)
      %n = Mul(%xf, %r)
      %nh = Cast(%n) {to = 10}
      %y = Mul(%w, %nh)
      return %y
    }

    // -----
    // The decomposed LayerNorm older exporters write (what tools/make_models.py builds).
    // CHECK-LABEL: graph layer_norm
    // CHECK: %y: f32[batch,seq,4] = LayerNormalization(%x, %gamma, %beta) {axis = -1, epsilon = 1e-12, stash_type = 1} @/ln/LayerNormalization
    // CHECK-NOT: ReduceMean
    graph layer_norm(%x: f32[batch,seq,4]) -> (%y: f32[batch,seq,4]) {
      %two = const f32[] [2.0]
      %eps = const f32[] [1e-12]
      %gamma = const f32[4] [1.0, 2.0, 3.0, 4.0]
      %beta = const f32[4] [0.5, 0.5, 0.5, 0.5]
      %mean = ReduceMean(%x) {axes = [-1], keepdims = 1} @/ln/ReduceMean
      %d = Sub(%x, %mean) @/ln/Sub
      %sq = Pow(%d, %two) @/ln/Pow
      %var = ReduceMean(%sq) {axes = [-1], keepdims = 1} @/ln/ReduceMean_1
      %ve = Add(%var, %eps) @/ln/Add
      %std = Sqrt(%ve) @/ln/Sqrt
      %n = Div(%d, %std) @/ln/Div
      %scaled = Mul(%n, %gamma) @/ln/Mul
      %y = Add(%scaled, %beta) @/ln/Add_1
      return %y
    }

    // -----
    // LayerNorm without β, with d·d and a Reciprocal; γ of shape [1,1,4].
    // CHECK-LABEL: graph layer_norm_no_beta
    // CHECK: %gamma_per_channel = const f32[4] [1.0, 2.0, 3.0, 4.0]
    // CHECK: LayerNormalization(%x, %gamma_per_channel) {axis = -1, epsilon = 1e-05, stash_type = 1}
    graph layer_norm_no_beta(%x: f32[2,3,4]) -> (%y: f32[2,3,4]) {
      %eps = const f32[1] [1e-05]
      %gamma = const f32[1,1,4] [1.0, 2.0, 3.0, 4.0]
      %mean = ReduceMean(%x) {axes = [2]}
      %d = Sub(%x, %mean)
      %sq = Mul(%d, %d)
      %var = ReduceMean(%sq) {axes = [2]}
      %ve = Add(%eps, %var)
      %std = Sqrt(%ve)
      %inv = Reciprocal(%std)
      %n = Mul(%inv, %d)
      %y = Mul(%gamma, %n)
      return %y
    }

    // -----
    // Below opset 17 there is no LayerNormalization: left alone, with a remark.
    // expected-remark {{LayerNorm left decomposed: LayerNormalization needs opset 17 (the model has 13)}}
    // ir_version 7, opsets ai.onnx=13
    graph dont_layer_norm_opset13(%x: f32[2,4]) -> (%y: f32[2,4]) {
      %two = const f32[] [2.0]
      %eps = const f32[] [1e-05]
      %gamma = const f32[4] <4 elements>
      %beta = const f32[4] <4 elements>
      %mean = ReduceMean(%x) {axes = [-1]}
      %d = Sub(%x, %mean)
      %sq = Pow(%d, %two)
      %var = ReduceMean(%sq) {axes = [-1]}
      %ve = Add(%var, %eps)
      %std = Sqrt(%ve)
      %n = Div(%d, %std)
      %scaled = Mul(%n, %gamma)
      %y = Add(%scaled, %beta)
      return %y
    }

    // -----
    // The mean square is also a graph output: rewriting would compute it twice.
    graph dont_rms_intermediate_used(%x: f32[2,4]) -> (%y: f32[2,4], %m: f32[2,1]) {
      %two = const f32[] [2.0]
      %eps = const f32[] [1e-05]
      %w = const f32[4] <4 elements>
      %p = Pow(%x, %two)
      %m = ReduceMean(%p) {axes = [-1]}
      %a = Add(%m, %eps)
      %s = Sqrt(%a)
      %n = Div(%x, %s)
      %y = Mul(%n, %w)
      return %y, %m
    }

    // -----
    // Mean over a non-last axis, a non-constant γ, a different x in the Mul: not norms.
    graph dont_not_a_norm(%x: f32[2,4], %g: f32[4], %other: f32[2,4]) -> (%y1: f32[2,4], %y2: f32[2,4], %y3: f32[2,4]) {
      %two = const f32[] [2.0]
      %eps = const f32[] [1e-05]
      %w = const f32[4] <4 elements>
      %p1 = Pow(%x, %two)
      %m1 = ReduceMean(%p1) {axes = [0]}
      %a1 = Add(%m1, %eps)
      %s1 = Sqrt(%a1)
      %n1 = Div(%x, %s1)
      %y1 = Mul(%n1, %w)
      %p2 = Pow(%x, %two)
      %m2 = ReduceMean(%p2) {axes = [-1]}
      %a2 = Add(%m2, %eps)
      %s2 = Sqrt(%a2)
      %n2 = Div(%x, %s2)
      %y2 = Mul(%n2, %g)
      %p3 = Pow(%x, %two)
      %m3 = ReduceMean(%p3) {axes = [-1]}
      %a3 = Add(%m3, %eps)
      %s3 = Sqrt(%a3)
      %n3 = Div(%other, %s3)
      %y3 = Mul(%n3, %w)
      return %y1, %y2, %y3
    }

    // -----
    // Existing norm ops are counted, not touched.
    graph dont_existing_norms(%x: f32[2,4]) -> (%y: f32[2,4]) {
      %g = const f32[4] <4 elements>
      %b = const f32[4] <4 elements>
      %y = LayerNormalization(%x, %g, %b) {axis = -1, epsilon = 1e-05}
      return %y
    }

    // -----
    // rms-op=rms-normalization needs opset 23.
    // expected-error {{canonicalize-norms{rms-op=rms-normalization} needs opset 23 or later (the model imports opset 17)}}
    graph rms_op_needs_opset(%x: f32[2,4]) -> (%y: f32[2,4]) {
      %y = Relu(%x)
      return %y
    }
    """

@Suite struct CanonicalizeNormsTests {
    @Test(arguments: IRTestCase.cases(canonicalizeNormsCases, suite: "canonicalize-norms", pipeline: "canonicalize-norms,dce"))
    func irCases(_ testCase: IRTestCase) throws {
        let pipeline = testCase.graphName == "rms_op_needs_opset" ? "canonicalize-norms{rms-op=rms-normalization}" : testCase.pipeline
        try IRTestCase(suite: testCase.suite, pipeline: pipeline, text: testCase.text).run()
    }

    @Test func countsNorms() throws {
        let cases = FileCheck.splitCases(canonicalizeNormsCases)
        let model = try IRParser(allowElidedConstants: true).parseModel(cases[0])
        let report = try PassManager(pipeline: "canonicalize-norms", registry: testRegistry).run(on: model)
        let statistics = try #require(report.records.first?.result.statistics)
        #expect(statistics[counter: "rms-norms"] == 1)
        #expect(statistics[counter: "layer-norms"] == 0)
        #expect(statistics.nodesAdded == 1 && statistics.nodesRemoved == 7)
    }

    @Test func countsNormsLeftForTheOpset() throws {
        let text = FileCheck.splitCases(canonicalizeNormsCases).first { $0.contains("graph dont_layer_norm_opset13") } ?? ""
        let model = try IRParser(allowElidedConstants: true).parseModel(text)
        let report = try PassManager(pipeline: "canonicalize-norms", registry: testRegistry).run(on: model)
        #expect(report.records.first?.result.statistics[counter: "skipped-opset"] == 1)
        #expect(report.records.first?.result.changed == false)
    }
}
