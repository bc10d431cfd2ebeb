import SQIR
import Testing
@testable import SQRuntime

/// Zero-length dims, as a KV-cache decoder's first step has them (`past_sequence_length = 0`):
/// shapes, Concat, Softmax, reductions and MatMul with K = 0 or N = 0 must give the
/// mathematically defined result (empty tensors, or sums of nothing = 0), never fail.
@Suite struct ZeroLengthTests {
    private func run(_ build: (TestGraph) -> Void, _ inputs: [String: Tensor]) throws -> [String: Tensor] {
        let g = TestGraph()
        build(g)
        return try g.plan().run(inputs: inputs)
    }

    private static let empty = floats([1, 2, 0, 4], [])

    @Test func concatOfAnEmptyPast() throws {
        let new = floats([1, 2, 3, 4], (0..<24).map(Float.init))
        let out = try run({ g in
            let past = g.input("past", .float, [.known(1), .known(2), .symbolic("p"), .known(4)])
            let k = g.input("k", .float, [.known(1), .known(2), .symbolic("s"), .known(4)])
            let present = g.op("Concat", [past, k], name: "present", attributes: [Attribute("axis", .int(2))])
            g.output(present, g.op("Shape", [past], name: "past_shape"))
        }, ["past": Self.empty, "k": new])
        #expect(out["present"]?.shape == [1, 2, 3, 4])
        #expect(out["present"]?.doubleValues() == new.doubleValues())
        #expect(out["past_shape"]?.int64Values() == [1, 2, 0, 4])
    }

    @Test func matMulWithZeroContractionGivesZeros() throws {
        let out = try run({ g in
            let a = g.input("a", .float, [.known(2), .symbolic("k")])
            let b = g.input("b", .float, [.symbolic("k"), .known(3)])
            g.output(g.op("MatMul", [a, b], name: "y"))
        }, ["a": floats([2, 0], []), "b": floats([0, 3], [])])
        #expect(out["y"]?.shape == [2, 3])
        #expect(out["y"]?.doubleValues() == [Double](repeating: 0, count: 6))
    }

    @Test func matMulWithZeroColumnsOrRowsIsEmpty() throws {
        let out = try run({ g in
            let q = g.input("q", .float, [.known(1), .known(2), .known(3), .known(4)])
            let kT = g.input("kT", .float, [.known(1), .known(2), .known(4), .symbolic("t")])
            let scores = g.op("MatMul", [q, kT], name: "scores")
            let rows = g.input("rows", .float, [.symbolic("m"), .known(4)])
            let w = g.input("w", .float, [.known(4), .known(5)])
            g.output(scores, g.op("Softmax", [scores], name: "probs", attributes: [Attribute("axis", .int(-1))]),
                     g.op("MatMul", [rows, w], name: "none"))
        }, ["q": floats([1, 2, 3, 4], [Float](repeating: 1, count: 24)), "kT": floats([1, 2, 4, 0], []),
            "rows": floats([0, 4], []), "w": floats([4, 5], [Float](repeating: 1, count: 20))])
        #expect(out["scores"]?.shape == [1, 2, 3, 0])
        #expect(out["probs"]?.shape == [1, 2, 3, 0])
        #expect(out["none"]?.shape == [0, 5])
    }

    @Test func reductionsOverAnEmptyAxis() throws {
        let axes = Attribute("axes", .ints([2]))
        let out = try run({ g in
            let x = g.input("x", .float, [.known(1), .known(2), .symbolic("p"), .known(4)])
            g.output(g.op("ReduceSum", [x], name: "sum", attributes: [axes]),
                     g.op("ReduceSum", [x], name: "sum_last", attributes: [Attribute("axes", .ints([3]))]),
                     g.op("Softmax", [x], name: "softmax", attributes: [Attribute("axis", .int(2))]),
                     g.op("Transpose", [x], name: "t", attributes: [Attribute("perm", .ints([0, 2, 1, 3]))]))
        }, ["x": Self.empty])
        #expect(out["sum"]?.shape == [1, 2, 1, 4])
        #expect(out["sum"]?.doubleValues() == [Double](repeating: 0, count: 8))
        #expect(out["sum_last"]?.shape == [1, 2, 0, 1])
        #expect(out["softmax"]?.shape == [1, 2, 0, 4])
        #expect(out["t"]?.shape == [1, 0, 2, 4])
    }
}
