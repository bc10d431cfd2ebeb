import Testing
import SQIR
import SQPasses

let shapeInferenceCases = """
    // CHECK-LABEL: graph elementwise_and_matmul
    // CHECK: %h: f32[batch,seq,32] = MatMul(%x, %w)
    // CHECK: %b: f32[batch,seq,32] = Add(%bias, %h)
    // CHECK: %m: bool[batch,seq,32] = Greater(%b, %zero)
    // CHECK: %r: f32[batch,seq,32] = Where(%m, %b, %zero)
    // CHECK: %v: f32[batch,1,32] = MatMul(%row, %w)
    // CHECK: %g: f32[batch,seq] = MatMul(%x, %vec)
    graph elementwise_and_matmul(%x: f32[batch,seq,64], %row: f32[batch,1,64], %w: f32[64,32], %vec: f32[64]) -> (%r: f32[batch,seq,32], %v: f32[batch,1,32], %g: f32[batch,seq]) {
      %bias = const f32[32] <32 elements>
      %zero = const f32[] [0.0]
      %h = MatMul(%x, %w)
      %b = Add(%bias, %h)
      %m = Greater(%b, %zero)
      %r = Where(%m, %b, %zero)
      %v = MatMul(%row, %w)
      %g = MatMul(%x, %vec)
      return %r, %v, %g
    }

    // -----
    // The Reshape arithmetic torch.onnx writes for splitting heads.
    // CHECK-LABEL: graph split_heads
    // CHECK: %s: i64[3] = Shape(%x)
    // CHECK: %b: i64[] = Gather(%s, %i0) {axis = 0}
    // CHECK: %shape: i64[4] = Concat(%bu, %su, %heads, %size) {axis = 0}
    // CHECK: %r: f32[batch,seq,12,64] = Reshape(%x, %shape)
    // CHECK: %t: f32[batch,12,seq,64] = Transpose(%r) {perm = [0, 2, 1, 3]}
    // CHECK: %scores: f32[batch,12,seq,seq] = MatMul(%t, %kt)
    // CHECK: %merged: f32[batch,seq,768] = Reshape(%back, %merge_shape)
    // CHECK: %flat: f32[?,768] = Reshape(%x, %flat_shape)
    graph split_heads(%x: f32[batch,seq,768]) -> (%scores: f32[batch,12,seq,seq], %merged: f32[batch,seq,768], %flat: f32[?,768]) {
      %i0 = const i64[] [0]
      %i1 = const i64[] [1]
      %axes = const i64[1] [0]
      %heads = const i64[1] [12]
      %size = const i64[1] [64]
      %minus1 = const i64[1] [-1]
      %c768 = const i64[1] [768]
      %s = Shape(%x)
      %b = Gather(%s, %i0) {axis = 0}
      %q = Gather(%s, %i1) {axis = 0}
      %bu = Unsqueeze(%b, %axes)
      %su = Unsqueeze(%q, %axes)
      %shape = Concat(%bu, %su, %heads, %size) {axis = 0}
      %r = Reshape(%x, %shape)
      %t = Transpose(%r) {perm = [0, 2, 1, 3]}
      %kt = Transpose(%r) {perm = [0, 2, 3, 1]}
      %scores = MatMul(%t, %kt)
      %back = Transpose(%t) {perm = [0, 2, 1, 3]}
      %merge_shape = Concat(%bu, %su, %minus1) {axis = 0}
      %merged = Reshape(%back, %merge_shape)
      %flat_shape = Concat(%minus1, %c768) {axis = 0}
      %flat = Reshape(%x, %flat_shape)
      return %scores, %merged, %flat
    }

    // -----
    // CHECK-LABEL: graph reductions_and_norms
    // CHECK: %mean: f32[batch,seq,1] = ReduceMean(%x) {axes = [-1], keepdims = 1}
    // CHECK: %sum: f32[batch,64] = ReduceSum(%x, %axes1) {keepdims = 0}
    // CHECK: %all: f32[] = ReduceMax(%x) {keepdims = 0}
    // CHECK: %ln: f32[batch,seq,64], %ln_mean: f32[batch,seq,1], _ = LayerNormalization(%x, %g, %b) {axis = -1}
    // CHECK: %rms: f32[batch,seq,64] = SimplifiedLayerNormalization(%x, %g)
    // CHECK: %sm: f32[batch,seq,64] = Softmax(%x) {axis = -1}
    // CHECK: %arg: i64[batch,seq] = ArgMax(%x) {axis = -1, keepdims = 0}
    graph reductions_and_norms(%x: f32[batch,seq,64]) -> (%mean: f32[batch,seq,1], %sum: f32[batch,64], %all: f32[], %ln: f32[batch,seq,64], %rms: f32[batch,seq,64], %sm: f32[batch,seq,64], %arg: i64[batch,seq]) {
      %g = const f32[64] <64 elements>
      %b = const f32[64] <64 elements>
      %axes1 = const i64[1] [1]
      %mean = ReduceMean(%x) {axes = [-1], keepdims = 1}
      %sum = ReduceSum(%x, %axes1) {keepdims = 0}
      %all = ReduceMax(%x) {keepdims = 0}
      %ln, %ln_mean, _ = LayerNormalization(%x, %g, %b) {axis = -1}
      %rms = SimplifiedLayerNormalization(%x, %g)
      %sm = Softmax(%x) {axis = -1}
      %arg = ArgMax(%x) {axis = -1, keepdims = 0}
      return %mean, %sum, %all, %ln, %rms, %sm, %arg
    }

    // -----
    // CHECK-LABEL: graph movement
    // CHECK: %c: f32[batch,seq,96] = Concat(%x, %y) {axis = -1}
    // CHECK: %p0: f32[batch,seq,32], %p1: f32[batch,seq,32], %p2: f32[batch,seq,32] = Split(%c) {axis = 2, num_outputs = 3}
    // CHECK: %q0: f32[batch,seq,64], %q1: f32[batch,seq,32] = Split(%c, %sizes) {axis = -1}
    // CHECK: %sl: f32[batch,seq,16] = Slice(%x, %s0, %s16, %ax2)
    // CHECK: %rev: f32[batch,seq,64] = Slice(%x, %sm1, %big_neg, %ax2, %sm1)
    // CHECK: %g: f32[batch,seq,2,64] = Gather(%table, %ids) {axis = 0}
    // CHECK: %u: f32[batch,1,seq,64] = Unsqueeze(%x, %ax1)
    // CHECK: %sq: f32[batch,seq,64] = Squeeze(%u, %ax1)
    // CHECK: %fl: f32[?,64] = Flatten(%x) {axis = 2}
    // CHECK: %e: f32[batch,seq,64] = Expand(%one_row, %shape)
    // CHECK: %pos: i64[seq] = Range(%i0, %seq, %i1)
    // CHECK: %cast: f16[batch,seq,64] = Cast(%x) {to = 10}
    // CHECK: %q: i8[batch,seq,64] = QuantizeLinear(%x, %scale, %zp)
    // CHECK: %dq: f32[batch,seq,64] = DequantizeLinear(%q, %scale, %zp)
    // CHECK: %z: f32[batch,seq] = ConstantOfShape(%bs)
    graph movement(%x: f32[batch,seq,64], %y: f32[batch,seq,32], %ids: i64[batch,seq,2], %table: f32[100,64]) -> (%p0: f32[batch,seq,32], %p1: f32[batch,seq,32], %p2: f32[batch,seq,32], %q0: f32[batch,seq,64], %q1: f32[batch,seq,32], %sl: f32[batch,seq,16], %rev: f32[batch,seq,64], %g: f32[batch,seq,2,64], %sq: f32[batch,seq,64], %fl: f32[?,64], %e: f32[batch,seq,64], %pos: i64[seq], %cast: f16[batch,seq,64], %dq: f32[batch,seq,64], %z: f32[batch,seq]) {
      %sizes = const i64[2] [64, 32]
      %s0 = const i64[1] [0]
      %s16 = const i64[1] [16]
      %sm1 = const i64[1] [-1]
      %big_neg = const i64[1] [-9223372036854775807]
      %ax1 = const i64[1] [1]
      %ax2 = const i64[1] [2]
      %i0 = const i64[] [0]
      %i1 = const i64[] [1]
      %one_row = const f32[64] <64 elements>
      %scale = const f32[] [0.1]
      %zp = const i8[] [0]
      %c = Concat(%x, %y) {axis = -1}
      %p0, %p1, %p2 = Split(%c) {axis = 2, num_outputs = 3}
      %q0, %q1 = Split(%c, %sizes) {axis = -1}
      %sl = Slice(%x, %s0, %s16, %ax2)
      %rev = Slice(%x, %sm1, %big_neg, %ax2, %sm1)
      %g = Gather(%table, %ids) {axis = 0}
      %u = Unsqueeze(%x, %ax1)
      %sq = Squeeze(%u, %ax1)
      %fl = Flatten(%x) {axis = 2}
      %shape = Shape(%x)
      %e = Expand(%one_row, %shape)
      %seq_shape = Shape(%x) {start = 1, end = 2}
      %seq = Squeeze(%seq_shape)
      %pos = Range(%i0, %seq, %i1)
      %cast = Cast(%x) {to = 10}
      %q = QuantizeLinear(%x, %scale, %zp)
      %dq = DequantizeLinear(%q, %scale, %zp)
      %bs = Shape(%x) {end = 2}
      %z = ConstantOfShape(%bs)
      return %p0, %p1, %p2, %q0, %q1, %sl, %rev, %g, %sq, %fl, %e, %pos, %cast, %dq, %z
    }

    // -----
    // Declared types win; a conflict is a warning. Unknown dims get filled in.
    // expected-warning {{'y' is declared f32[4,5] but infers as f32[4,4]}}
    // CHECK-LABEL: graph declared_types
    // CHECK: %y: f32[4,5] = Relu(%x)
    // CHECK: %z: f32[4,4] = Neg(%x)
    graph declared_types(%x: f32[4,4]) -> (%y: f32[4,5], %z: f32[?,4]) {
      %y = Relu(%x)
      %z = Neg(%x)
      return %y, %z
    }

    // -----
    // Unknown ops leave their outputs untyped; everything downstream stays unknown.
    graph dont_guess_unknown_ops(%x: f32[4]) -> (%y) {
      %u = custom::Mystery(%x)
      %y = Relu(%u)
      return %y
    }
    """

@Suite struct ShapeInferenceTests {
    @Test(arguments: IRTestCase.cases(shapeInferenceCases, suite: "shape-inference", pipeline: "shape-inference"))
    func irCases(_ testCase: IRTestCase) throws {
        try testCase.run()
    }
}
