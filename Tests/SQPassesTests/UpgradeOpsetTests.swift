import Testing
import SQIR
import SQPasses

let upgradeOpsetCases = """
    // CHECK-LABEL: // ir_version 10, opsets ai.onnx=21, com.microsoft=1
    // CHECK: %mean_axes = const i64[1] [-1]
    // CHECK: %sum_axes = const i64[2] [0, 1]
    // CHECK: %unsq_axes = const i64[1] [0]
    // CHECK: %split_split = const i64[2] [1, 1]
    // CHECK: %y: f32[2,1] = ReduceMean(%x, %mean_axes) {keepdims = 1} @mean
    // CHECK: %s: f32[] = ReduceSum(%x, %sum_axes) {keepdims = 0} @sum
    // CHECK: %all: f32[1,1] = ReduceMax(%x) @max
    // CHECK: %u = Unsqueeze(%x, %unsq_axes) @unsq
    // CHECK: %a, %b = Split(%x, %split_split) {axis = 0} @split
    // CHECK: %e1, %e2 = Split(%x) {axis = 1, num_outputs = 2} @even
    // CHECK: %sm = Softmax(%x) {axis = -1} @softmax
    // CHECK: com.microsoft::Custom(%x) {axes = [1]}
    // ir_version 7, opsets ai.onnx=12, com.microsoft=1
    graph reductions_and_splits(%x: f32[2,8]) -> (%y: f32[2,1], %s: f32[], %all: f32[1,1], %u, %a, %b, %e1, %e2, %sm) {
      %y = ReduceMean(%x) {axes = [-1], keepdims = 1} @mean
      %s = ReduceSum(%x) {axes = [0, 1], keepdims = 0} @sum
      %all = ReduceMax(%x) @max
      %u = Unsqueeze(%x) {axes = [0]} @unsq
      %a, %b = Split(%x) {axis = 0, split = [1, 1]} @split
      %e1, %e2 = Split(%x) {axis = 1} @even
      %sm = Softmax(%x) {axis = -1} @softmax
      com.microsoft::Custom(%x) {axes = [1]}
      return %y, %s, %all, %u, %a, %b, %e1, %e2, %sm
    }

    // -----
    // Attributes that became inputs at 10, 11 and 12; rank-2 Softmax with the old default axis.
    // CHECK-LABEL: graph old_attributes
    // CHECK: %slice_starts = const i64[1] [0]
    // CHECK: %slice_ends = const i64[1] [4]
    // CHECK: %slice_axes = const i64[1] [1]
    // CHECK: %pad_pads = const i64[4] [0, 1, 0, 1]
    // CHECK: %pad_constant_value = const f32[] [2.0]
    // CHECK: %clip_max = const f32[] [6.0]
    // CHECK: %drop_ratio = const f32[] [0.1]
    // CHECK: %topk_k = const i64[1] [3]
    // CHECK: Slice(%x, %slice_starts, %slice_ends, %slice_axes) @slice
    // CHECK: Pad(%x, %pad_pads, %pad_constant_value) {mode = "constant"} @pad
    // CHECK: Clip(%x, _, %clip_max) @clip
    // CHECK: Dropout(%x, %drop_ratio) @drop
    // CHECK: TopK(%x, %topk_k) {axis = 1} @topk
    // CHECK: Softmax(%x) {axis = 1} @softmax
    // CHECK: ScatterElements(%x, %i, %x) {axis = 1} @scatter
    // ir_version 3, opsets ai.onnx=9
    graph old_attributes(%x: f32[2,8], %i: i64[2,8]) -> (%sl, %p, %c, %d, %v, %t, %sm, %sc) {
      %sl = Slice(%x) {starts = [0], ends = [4], axes = [1]} @slice
      %p = Pad(%x) {pads = [0, 1, 0, 1], mode = "constant", value = 2.0} @pad
      %c = Clip(%x) {max = 6.0} @clip
      %d = Dropout(%x) {ratio = 0.1} @drop
      %v, %t = TopK(%x) {axis = 1, k = 3} @topk
      %sm = Softmax(%x) @softmax
      %sc = Scatter(%x, %i, %x) {axis = 1} @scatter
      return %sl, %p, %c, %d, %v, %t, %sm, %sc
    }

    // -----
    // Subgraphs are upgraded too; their new initializers live in the subgraph.
    // CHECK-LABEL: graph subgraphs
    // CHECK: %m_axes = const i64[1] [0]
    // CHECK-NEXT: %r = ReduceMean(%x, %m_axes) @m
    // ir_version 8, opsets ai.onnx=17
    graph subgraphs(%x: f32[4], %c: bool[]) -> (%o) {
      %o = If(%c) {then_branch = 
        graph then() -> (%r) {
          %r = ReduceMean(%x) {axes = [0]} @m
          return %r
        }
      , else_branch = 
        graph else() -> (%x2) {
          %x2 = Identity(%x)
          return %x2
        }
      }
      return %o
    }

    // -----
    // Already there: nothing to do.
    // ir_version 10, opsets ai.onnx=21
    graph dont_same_opset(%x: f32[2,8]) -> (%y) {
      %axes = const i64[1] [1]
      %y = ReduceMean(%x, %axes)
      return %y
    }

    // -----
    // expected-error {{node 'up' (Upsample): upgrade-opset cannot take Upsample from opset 9 to 21: Upsample was removed at opset 10 (use Resize)}}
    // ir_version 4, opsets ai.onnx=9
    graph refuses_upsample(%x: f32[1,1,2,2], %s: f32[4]) -> (%y) {
      %y = Upsample(%x, %s) @up
      return %y
    }

    // -----
    // expected-error {{node 'sm' (Softmax): upgrade-opset cannot take Softmax from opset 11 to 21: axis 1 is not known to be the last axis}}
    // ir_version 6, opsets ai.onnx=11
    graph refuses_softmax_middle_axis(%x: f32[2,3,4]) -> (%y) {
      %y = Softmax(%x) @sm
      return %y
    }

    // -----
    // expected-error {{node 'w' (Wobble): upgrade-opset cannot take Wobble from opset 13 to 21: sqopt does not know how Wobble changed}}
    // ir_version 7, opsets ai.onnx=13
    graph refuses_unknown_op(%x: f32[2]) -> (%y) {
      %y = Wobble(%x) @w
      return %y
    }

    // -----
    // expected-error {{upgrade-opset cannot lower the opset: the model imports opset 23, to=21}}
    // ir_version 11, opsets ai.onnx=23
    graph refuses_lowering(%x: f32[2]) -> (%y) {
      %y = Relu(%x)
      return %y
    }
    """

@Suite struct UpgradeOpsetTests {
    @Test(arguments: IRTestCase.cases(upgradeOpsetCases, suite: "upgrade-opset", pipeline: "upgrade-opset{to=21}"))
    func irCases(_ testCase: IRTestCase) throws {
        try testCase.run()
    }

    @Test func refusalLeavesTheModelUntouched() throws {
        let text = """
            // ir_version 7, opsets ai.onnx=13
            graph g(%x: f32[2,8]) -> (%y, %z) {
              %y = ReduceMean(%x) {axes = [1]}
              %z = Wobble(%x)
              return %y, %z
            }
            """
        let model = try IRParser().parseModel(text)
        let before = IRPrinter().print(model)
        #expect(throws: PassExecutionError.self) { try PassManager(pipeline: "upgrade-opset", registry: testRegistry).run(on: model) }
        #expect(IRPrinter().print(model) == before)
    }

    @Test func targetOutOfRangeIsAUsageError() {
        #expect(throws: PipelineError.invalidOptionValue(pass: "upgrade-opset", option: "to", value: "30", expected: "an opset from 7 to 23")) {
            _ = try PassManager(pipeline: "upgrade-opset{to=30}", registry: testRegistry)
        }
    }
}
