import Synchronization
import Foundation
import SQIR
@testable import SQRuntime
import Testing

/// The plan's contract: input checking, error locations, folding, dead nodes, buffer
/// reuse, observers, dynamic shapes and concurrent runs. Numeric op behaviour is covered
/// by the ONNX backend tests (ConformanceTests) and whole models (ModelEquivalenceTests).
@Suite struct PlanTests {
    /// y = Relu(x + b) * 2 with x: f32[batch, 3].
    static func smallGraph() -> TestGraph {
        let g = TestGraph()
        let x = g.input("x", .float, [.symbolic("batch"), .known(3)])
        let b = g.constant("b", floats([3], [1, -1, 0.5]))
        let two = g.constant("two", Tensor(scalar: Float(2)))
        let sum = g.op("Add", [x, b], name: "add")
        let relu = g.op("Relu", [sum], name: "relu")
        let y = g.op("Mul", [relu, two], name: "scale")
        g.output(y)
        return g
    }

    @Test func runsAndReusesThePlan() throws {
        let plan = try Self.smallGraph().plan()
        #expect(plan.inputNames == ["x"])
        #expect(plan.outputNames == ["scale"])
        for batch in [1, 4, 0] {
            let x = floats([batch, 3], (0..<(batch * 3)).map { Float($0) - 4 })
            let y = try #require(try plan.run(inputs: ["x": x])["scale"])
            #expect(y.shape == [batch, 3])
            let expected = x.elements(as: Float.self).enumerated().map { i, v in max(0, v + [1, -1, 0.5][i % 3]) * 2 }
            #expect(y.elements(as: Float.self) == expected)
        }
    }

    @Test func missingAndUnknownInputs() throws {
        let plan = try Self.smallGraph().plan()
        let missing = irError { _ = try plan.run(inputs: [:]) }
        #expect(missing?.description == "input 'x': missing input 'x' of type f32[batch,3]")
        let extra = irError { _ = try plan.run(inputs: ["x": floats([1, 3], [0, 0, 0]), "y": floats([1], [0])]) }
        #expect(extra?.description == "input 'y': the model has no input named 'y' (inputs: x)")
    }

    @Test func inputTypeChecks() throws {
        let g = TestGraph()
        let a = g.input("a", .float, [.symbolic("batch"), .symbolic("seq")])
        let b = g.input("b", .float, [.symbolic("batch"), .known(2)])
        g.output(g.op("Identity", [a]), g.op("Identity", [b]))
        let plan = try g.plan()
        let ok = floats([1, 2], [1, 2])
        #expect(irError { _ = try plan.run(inputs: ["a": int64s([1, 2], [1, 2]), "b": ok]) }?.description
                == "input 'a': expected element type f32, got i64")
        #expect(irError { _ = try plan.run(inputs: ["a": floats([2], [1, 2]), "b": ok]) }?.description
                == "input 'a': expected rank 2 (f32[batch,seq]), got shape [2]")
        #expect(irError { _ = try plan.run(inputs: ["a": ok, "b": floats([1, 3], [1, 2, 3])]) }?.description
                == "input 'b': dimension 1 must be 2 (f32[batch,2]), got shape [1, 3]")
        #expect(irError { _ = try plan.run(inputs: ["a": ok, "b": floats([2, 2], [1, 2, 3, 4])]) }?.description
                == "input 'b': dimension 0 ('batch') is 2, but 'batch' is 1 in input 'a'")
        #expect(irError { _ = try plan.run(inputs: ["a": ok, "b": ok]) } == nil)
    }

    @Test func unsupportedOperatorIsNamed() throws {
        let g = TestGraph()
        let x = g.input("x", .float, [.known(2)])
        g.output(g.node("FancyOp", [x], name: "my_node", domain: "com.example")[0])
        let error = irError { _ = try g.plan() }
        #expect(error?.description == "node 'my_node' (com.example::FancyOp): unsupported operator 'FancyOp' (domain 'com.example', opset 1)")

        let h = TestGraph()
        let y = h.input("y", .float, [.known(2)])
        h.output(h.op("Loop", [y], name: "loop"))
        #expect(irError { _ = try h.plan(opset: 19) }?.description == "node 'loop' (Loop): unsupported operator 'Loop' (domain 'ai.onnx', opset 19)")
    }

    @Test func shapeErrorsNameTheNode() throws {
        let g = TestGraph()
        let x = g.input("x", .float, [.unknown, .unknown])
        let bias = g.constant("bias", floats([4], [1, 2, 3, 4]))
        g.output(g.op("Add", [x, bias], name: "/layer0/Add"))
        let plan = try g.plan()
        let error = irError { _ = try plan.run(inputs: ["x": floats([2, 3], [1, 2, 3, 4, 5, 6])]) }
        #expect(error?.location == "node '/layer0/Add' (Add)")
        #expect(error?.reason == "shapes [2, 3] and [4] cannot be broadcast together")
    }

    @Test func badDataNeverCrashes() throws {
        // Gather with an index out of range, Reshape to an impossible shape, a huge Range.
        let g = TestGraph()
        let table = g.constant("table", floats([3, 2], [1, 2, 3, 4, 5, 6]))
        let ids = g.input("ids", .int64, [.unknown])
        let shape = g.input("shape", .int64, [.known(2)])
        let limit = g.input("limit", .float, [])
        let gathered = g.op("Gather", [table, ids], name: "gather")
        let start = g.constant("start", Tensor(scalar: Float(0)))
        let step = g.constant("step", Tensor(scalar: Float(1e-30)))
        g.output(g.op("Reshape", [gathered, shape], name: "reshape"), g.op("Range", [start, limit, step], name: "range"))
        let plan = try g.plan()
        let good: [String: Tensor] = ["ids": int64s([2], [0, -1]), "shape": int64s([2], [1, 4]), "limit": Tensor(scalar: Float(3))]
        #expect(irError { _ = try plan.run(inputs: good) }?.location == "node 'range' (Range)")
        var bad = good
        bad["limit"] = Tensor(scalar: Float(0))
        #expect(irError { _ = try plan.run(inputs: bad) } == nil)
        bad["ids"] = int64s([1], [3])
        #expect(irError { _ = try plan.run(inputs: bad) }?.description == "node 'gather' (Gather): index 3 is out of range for axis 0 of shape [3, 2]")
        bad["ids"] = int64s([2], [0, 1])
        bad["shape"] = int64s([2], [3, -1])
        #expect(irError { _ = try plan.run(inputs: bad) }?.description == "node 'reshape' (Reshape): cannot reshape [2, 2] to [3, -1]")
    }

    @Test func foldsConstantsAndDropsDeadNodes() throws {
        let g = TestGraph()
        let x = g.input("x", .float, [.known(2)])
        let c = g.constant("c", floats([2], [1, 2]))
        let folded = g.op("Mul", [c, c], name: "c_squared")          // constant: folded
        let unused = g.op("Exp", [x], name: "dead")                  // no path to an output
        _ = unused
        g.output(g.op("Add", [x, folded], name: "sum"))
        let plan = try g.plan()
        #expect(plan.stepCount == 1)
        #expect(plan.computedValueNames == ["sum"])
        let unfolded = try g.plan(options: PlanOptions(foldConstants: false))
        #expect(unfolded.stepCount == 2)
        for p in [plan, unfolded] {
            let y = try #require(try p.run(inputs: ["x": floats([2], [10, 20])])["sum"])
            #expect(y.elements(as: Float.self) == [11, 24])
        }
    }

    @Test func observersSeeValuesInOrder() throws {
        let plan = try Self.smallGraph().plan()
        let x = floats([1, 3], [1, 2, 3])
        var seen: [(String, [Float])] = []
        _ = try plan.run(inputs: ["x": x], observer: { name, t in seen.append((name, t.elements(as: Float.self))) })
        #expect(seen.map(\.0) == ["x", "add", "relu", "scale"])
        #expect(seen[1].1 == [2, 1, 3.5])

        var chosen: [String] = []
        _ = try plan.run(inputs: ["x": x], observe: ["relu"], observer: { name, _ in chosen.append(name) })
        #expect(chosen == ["relu"])

        struct Stop: Error {}
        #expect(throws: Stop.self) { try plan.run(inputs: ["x": x], observer: { _, _ in throw Stop() }) }
    }

    @Test func buffersAreReleasedAndReused() throws {
        // A chain of same-size elementwise ops: after the first two, every output reuses
        // the buffer freed by the value two steps back.
        let g = TestGraph()
        var v = g.input("x", .float, [.known(1024)])
        for i in 0..<10 { v = g.op(i % 2 == 0 ? "Neg" : "Abs", [v], name: "op\(i)") }
        g.output(v)
        let plan = try g.plan()
        let (outputs, allocations, reuses) = try runCounting(plan, ["x": floats([1024], [Float](repeating: 1, count: 1024))])
        #expect(outputs["op9"]?.elements(as: Float.self).allSatisfy { $0 == 1 } == true)
        #expect(allocations == 2)
        #expect(reuses == 8)
    }

    @Test func heldOutputsSurviveLaterRuns() throws {
        // Buffers are cached across runs; outputs the caller still holds must never be
        // handed out again, outputs it dropped may be.
        let plan = try Self.smallGraph().plan()
        let first = try #require(try plan.run(inputs: ["x": floats([1, 3], [1, 2, 3])])["scale"])
        let before = first.elements(as: Float.self)
        for i in 0..<5 {
            let y = try #require(try plan.run(inputs: ["x": floats([1, 3], [Float(i), 7, -9])])["scale"])
            #expect(y.elements(as: Float.self) == [max(0, Float(i) + 1) * 2, 12, 0])
        }
        #expect(first.elements(as: Float.self) == before)
    }

    @Test func concurrentRunsAgree() throws {
        let plan = try Self.smallGraph().plan()
        let inputs = (0..<8).map { i in floats([2, 3], (0..<6).map { Float($0 * i) - 7 }) }
        let expected = try inputs.map { try #require(try plan.run(inputs: ["x": $0])["scale"]).elements(as: Float.self) }
        let results = Mutex([[Float]](repeating: [], count: inputs.count))
        DispatchQueue.concurrentPerform(iterations: inputs.count) { i in
            let y = (try? plan.run(inputs: ["x": inputs[i]]))?["scale"]?.elements(as: Float.self) ?? []
            results.withLock { $0[i] = y }
        }
        #expect(results.withLock { $0 } == expected)
    }
}

/// Degenerate products: an empty reduction (K = 0) gives zeros, with packed and
/// run-time weights alike.
@Suite struct EmptyProductTests {
    @Test func matmulWithEmptyInnerDimension() throws {
        for constantWeight in [true, false] {
            let g = TestGraph()
            let x = g.input("x", .float, [.known(3), .known(0)])
            let w = constantWeight ? g.constant("w", floats([0, 4], [])) : g.input("w", .float, [.known(0), .known(4)])
            g.output(g.op("MatMul", [x, w], name: "mm"))
            let plan = try g.plan()
            var inputs = ["x": floats([3, 0], [])]
            if !constantWeight { inputs["w"] = floats([0, 4], []) }
            // Run twice: the second run reuses buffers, which must not leak stale data.
            for _ in 0..<2 {
                let y = try #require(try plan.run(inputs: inputs)["mm"])
                #expect(y.shape == [3, 4])
                #expect(y.elements(as: Float.self) == [Float](repeating: 0, count: 12))
            }
        }
    }
}

/// `PlanOptions.packedWeightBytes`: constant weights are packed at plan time, in node order,
/// while their float32 size fits the budget; the rest are widened and packed at every run
/// (what keeps calibration of a large float16 model near the model's size). Both paths give
/// the same bytes.
@Suite struct PackedWeightBudgetTests {
    /// x · W0 · W1 · W2, every tensor in `dtype`, W [4, 4]: 64 bytes of float32 per weight.
    /// Values on a 1/8 grid, so every product and sum is exact in float32.
    static func chain(_ dtype: DType) throws -> TestGraph {
        let g = TestGraph()
        var h = g.input("x", dtype, [.symbolic("m"), .known(4)])
        for i in 0..<3 {
            let values = (0..<16).map { Float(($0 * 7 + i * 3) % 11) / 8 - 0.5 }
            h = g.op("MatMul", [h, g.constant("w\(i)", try tensor(dtype, [4, 4], values))], name: "mm\(i)")
        }
        g.output(h)
        return g
    }

    static func tensor(_ dtype: DType, _ shape: [Int], _ values: [Float]) throws -> Tensor {
        guard dtype == .float16 else { return floats(shape, values) }
        let bits = values.map(\.float16Bits)
        return try Tensor(dtype: .float16, shape: shape, storage: bits.withUnsafeBytes { TensorStorage(copying: $0) })
    }

    static func packed(_ plan: ExecutionPlan) -> [Bool] {
        plan.steps.compactMap { ($0.kernel as? MatMulKernel).map { $0.packedB != nil } }
    }

    /// An unpacked half-precision weight is widened a block of columns at a time; any block
    /// width gives the product of the whole widened weight.
    @Test(arguments: [DType.float16, .bfloat16])
    func columnBlocksGiveTheWholeProduct(dtype: DType) throws {
        let (k, n) = (5, 11)
        let values = (0..<(k * n)).map { Float(($0 * 5) % 13) / 8 - 0.75 }  // exact in both types
        let bits = values.map { dtype == .float16 ? $0.float16Bits : UInt16(truncatingIfNeeded: $0.bitPattern >> 16) }
        let b = try Tensor(dtype: dtype, shape: [k, n], storage: bits.withUnsafeBytes { TensorStorage(copying: $0) })
        let a = floats([2, 3, k], (0..<(6 * k)).map { Float($0 % 7) / 4 - 0.5 })
        let pool = BufferPool(maxTensorBytes: .max)
        let whole = try matmul(a, try widenedToFloat(b, pool), pool)
        for columns in [1, 3, 4, 11, 64] {
            let blocked = try matmulByColumnBlocks(a, halfB: b, columns: columns, pool)
            #expect(blocked.shape == [2, 3, n])
            #expect(blocked.elements(as: Float.self) == whole.elements(as: Float.self), "columns \(columns)")
        }
    }

    @Test(arguments: [DType.float, .float16])
    func weightsPastTheBudgetArePackedPerRun(dtype: DType) throws {
        let unlimited = try Self.chain(dtype).plan()
        let two = try Self.chain(dtype).plan(options: PlanOptions(packedWeightBytes: 2 * 64 + 63))
        let none = try Self.chain(dtype).plan(options: PlanOptions(packedWeightBytes: 0))
        #expect(Self.packed(unlimited) == [true, true, true])
        #expect(Self.packed(two) == [true, true, false])
        #expect(Self.packed(none) == [false, false, false])
        let x = try Self.tensor(dtype, [3, 4], (0..<12).map { Float($0 % 5) / 4 - 0.5 })
        let reference = try #require(try unlimited.run(inputs: ["x": x])["mm2"])
        #expect(reference.dtype == dtype && reference.shape == [3, 4])
        for plan in [two, none] {
            for _ in 0..<2 {  // the second run reuses the widened weights' buffers
                let y = try #require(try plan.run(inputs: ["x": x])["mm2"])
                #expect(y.dtype == dtype && y.shape == [3, 4])
                #expect(Array(y.storage.bytes) == Array(reference.storage.bytes))
            }
        }
    }
}

private extension Float {
    var float16Bits: UInt16 { Float16(self).bitPattern }
}
