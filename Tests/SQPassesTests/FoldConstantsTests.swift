import Testing
import SQIR
import SQPasses

let foldConstantsCases = """
    // Shape arithmetic on a static shape folds to the Reshape's target.
    // CHECK-LABEL: graph shape_arithmetic
    // CHECK: %shape = const i64[4] [2, 3, 2, 2]
    // CHECK-NOT: Shape(
    // CHECK-NOT: Concat
    // CHECK: %r: f32[2,3,2,2] = Reshape(%x, %shape)
    graph shape_arithmetic(%x: f32[2,3,4]) -> (%r: f32[2,3,2,2]) {
      %i0 = const i64[] [0]
      %i1 = const i64[] [1]
      %axes = const i64[1] [0]
      %two = const i64[1] [2]
      %s = Shape(%x)
      %b = Gather(%s, %i0) {axis = 0}
      %t = Gather(%s, %i1) {axis = 0}
      %bu = Unsqueeze(%b, %axes)
      %tu = Unsqueeze(%t, %axes)
      %shape = Concat(%bu, %tu, %two, %two) {axis = 0}
      %r = Reshape(%x, %shape)
      return %r
    }

    // -----
    // Constant nodes become initializers (same value names); float math folds exactly.
    // CHECK-LABEL: graph constants_and_math
    // CHECK: %inv = const f32[2] [0.5, 0.33333334]
    // CHECK-NEXT: %picked_all = const i64[3] [7, 7, 2]
    // CHECK-NEXT: %y: f32[2] = Mul(%x, %inv)
    // CHECK-NEXT: %picked: i64[3] = Identity(%picked_all)
    graph constants_and_math(%x: f32[2]) -> (%y: f32[2], %picked: i64[3]) {
      %c = Constant() {value = dense<f32[2] [4.0, 9.0]>}
      %one = Constant() {value_float = 1.0}
      %root = Sqrt(%c)
      %inv = Div(%one, %root)
      %ints = Cast(%root) {to = 6}
      %start = const i64[] [5]
      %limit = const i64[] [0]
      %step = const i64[] [-2]
      %r = Range(%start, %limit, %step)
      %neg = Neg(%r)
      %minus1 = const i64[] [-1]
      %mask = Equal(%neg, %minus1)
      %seven = const i64[] [7]
      %two = const i64[] [2]
      %picked_all = Where(%mask, %two, %seven)
      %y = Mul(%x, %inv)
      %picked = Identity(%picked_all)
      return %y, %picked
    }

    // -----
    // Movement ops on constants: Transpose of a weight, Slice with negative steps, Expand.
    // CHECK-LABEL: graph movement
    // CHECK: %w2 = const f32[2,3] [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    // CHECK: %rev = const f32[2,3] [3.0, 2.0, 1.0, 6.0, 5.0, 4.0]
    // CHECK: %ex = const f32[2,3] [1.0, 1.0, 1.0, 2.0, 2.0, 2.0]
    // CHECK: %zeros = const i64[2,2] [0, 0, 0, 0]
    graph movement(%x: f32[4,2]) -> (%y: f32[4,3], %z: f32[2,3], %e: f32[2,3], %zz: i64[2,2]) {
      %w = const f32[2,3] [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
      %wt = Transpose(%w)
      %w2 = Transpose(%wt)
      %y = MatMul(%x, %w2)
      %start = const i64[1] [-1]
      %end = const i64[1] [-9223372036854775807]
      %axis = const i64[1] [1]
      %step = const i64[1] [-1]
      %rev = Slice(%w, %start, %end, %axis, %step)
      %z = Identity(%rev)
      %col = const f32[2,1] [1.0, 2.0]
      %shape = const i64[2] [2, 3]
      %ex = Expand(%col, %shape)
      %e = Identity(%ex)
      %zshape = const i64[2] [2, 2]
      %zeros = ConstantOfShape(%zshape) {value = dense<i64[1] [0]>}
      %zz = Identity(%zeros)
      return %y, %z, %e, %zz
    }

    // -----
    // A large output that is bigger than every input stays a node (with a remark).
    // expected-remark {{not folded: an output has more than max-elements=65536 elements}}
    graph dont_fold_huge_expand(%x: f32[512,512]) -> (%y: f32[512,512]) {
      %one = const f32[1] [1.0]
      %shape = const i64[2] [512, 512]
      %big = Expand(%one, %shape)
      %y = Add(%x, %big)
      return %y
    }

    // -----
    // Quantized weights stay quantized; symbolic shapes and graph outputs are not folded.
    graph dont_fold_dequantize(%x: f32[batch,4]) -> (%y: f32[batch,2], %s: i64[2], %c: f32[1]) {
      %w = const i8[4,2] [1, 2, 3, 4, 5, 6, 7, 8]
      %scale = const f32[] [0.5]
      %wf = DequantizeLinear(%w, %scale)
      %y = MatMul(%x, %wf)
      %s = Shape(%x)
      %k = const f32[1] [3.0]
      %c = Identity(%k)
      return %y, %s, %c
    }
    """

@Suite struct FoldConstantsTests {
    @Test(arguments: IRTestCase.cases(foldConstantsCases, suite: "fold-constants", pipeline: "fold-constants,dce"))
    func irCases(_ testCase: IRTestCase) throws {
        try testCase.run()
    }

    @Test func foldDequantizeOption() throws {
        let model = try IRParser().parseModel("""
            graph g(%x: f32[3,4]) -> (%y: f32[3,2]) {
              %w = const i8[4,2] [1, 2, 3, 4, 5, 6, 7, -8]
              %scale = const f32[] [0.5]
              %wf = DequantizeLinear(%w, %scale)
              %y = MatMul(%x, %wf)
              return %y
            }
            """)
        try PassManager(pipeline: "fold-constants", registry: testRegistry).run(on: model)
        #expect(model.graph.nodes.map(\.opType) == ["DequantizeLinear", "MatMul"])
        try PassManager(pipeline: "fold-constants{fold-dequantize=true}", registry: testRegistry).run(on: model)
        #expect(model.graph.nodes.map(\.opType) == ["MatMul"])
        #expect(model.graph.valuesByName()["wf"]?.constant?.doubleValues() == [0.5, 1, 1.5, 2, 2.5, 3, 3.5, -4])
    }

    /// Ops the pass does not compute itself run on the interpreter's kernels.
    @Test func otherOpsUseTheInterpreter() throws {
        let model = try IRParser().parseModel("""
            graph g(%x: f32[2]) -> (%y: f32[2]) {
              %a = const f32[2,2] [1.0, 2.0, 3.0, 4.0]
              %b = const f32[2,2] [1.0, 0.0, 0.0, 2.0]
              %p = MatMul(%a, %b)
              %s = Softmax(%p) {axis = -1}
              %r = ReduceSum(%s) {keepdims = 0}
              %y = Mul(%x, %r)
              return %y
            }
            """)
        let report = try PassManager(pipeline: "fold-constants", registry: testRegistry).run(on: model)
        #expect(report.records.first?.result.statistics[counter: "folded"] == 3)
        #expect(model.graph.valuesByName()["p"]?.constant?.doubleValues() == [1, 4, 3, 8])
        let sum = try #require(model.graph.valuesByName()["r"]?.constant?.scalarDouble)
        #expect(abs(sum - 2) < 1e-6)
    }

    @Test func injectedEvaluatorIsUsed() throws {
        struct AlwaysSeven: ConstantEvaluator {
            func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor]? {
                node.opType == "Neg" ? [Tensor(shape: [1], values: [Float(7)])] : nil
            }
        }
        let model = try IRParser().parseModel("""
            graph g(%x: f32[1]) -> (%y: f32[1]) {
              %k = const f32[1] [3.0]
              %n = Neg(%k)
              %y = Add(%x, %n)
              return %y
            }
            """)
        let context = PassContext()
        context[ConstantEvaluatorKey.self] = AlwaysSeven()
        try PassManager(pipeline: "fold-constants", registry: testRegistry).run(on: model, context: context)
        #expect(model.graph.valuesByName()["n"]?.constant?.doubleValues() == [7])
    }
}

extension FoldConstantsTests {
    /// Without dce: every folded value keeps its name and becomes an initializer.
    @Test func foldedValuesKeepTheirNames() throws {
        let text = FileCheck.splitCases(foldConstantsCases)[1]
        let model = try IRParser().parseModel(text)
        try PassManager(pipeline: "fold-constants", registry: testRegistry).run(on: model)
        let constants = Dictionary(uniqueKeysWithValues: model.graph.initializers.map { ($0.name, $0.constant?.doubleValues() ?? []) })
        #expect(constants["c"] == [4, 9])
        #expect(constants["root"] == [2, 3])
        #expect(constants["ints"] == [2, 3])
        #expect(constants["r"] == [5, 3, 1])
        #expect(constants["neg"] == [-5, -3, -1])
        #expect(constants["mask"] == [0, 0, 1])
        #expect(model.graph.valuesByName()["ints"]?.type == TensorType(.int32, shape: [2]))
        #expect(model.graph.nodes.map(\.opType) == ["Mul", "Identity"])
    }
}
