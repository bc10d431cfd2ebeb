import SQIR
@testable import SQRuntime
import Testing

/// Values a hostile or broken model can feed to kernels: every case must end in a result
/// or an error, never a trap (overflowing sizes, huge steps, NaN, infinities).
@Suite struct HostileInputTests {
    let pool = BufferPool(maxTensorBytes: 1 << 24)
    let x = floats([2, 3], [1, 2, 3, 4, 5, 6])
    let big = Int64.max, small = Int64.min

    func outcome(_ kernel: any OpKernel, _ inputs: [Tensor?]) -> String {
        do {
            let out = try kernel.run(inputs, pool)
            return "ok \(out.compactMap { $0?.shape })"
        } catch {
            return "error"
        }
    }

    @Test func sliceWithExtremeBoundsAndSteps() {
        let s = SliceKernel()
        for (start, end, step) in [(0, big, big), (big, small, small), (small, big, 1), (-1, small, -1), (0, 3, small)] {
            let r = outcome(s, [x, int64s([1], [start]), int64s([1], [end]), int64s([1], [1]), int64s([1], [step])])
            #expect(r.hasPrefix("ok"), "slice \(start):\(end):\(step) -> \(r)")
        }
        #expect(outcome(s, [x, int64s([1], [0]), int64s([1], [3]), int64s([1], [1]), int64s([1], [0])]) == "error")
    }

    @Test func sizesThatOverflow() {
        #expect(outcome(SplitKernel(axis: 1, outputCount: 2, attributeSplit: nil, numOutputs: nil), [x, int64s([2], [big, 2])]) == "error")
        #expect(outcome(TileKernel(), [x, int64s([2], [big, 2])]) == "error")
        #expect(outcome(TileKernel(), [x, int64s([2], [1 << 20, 1 << 20])]) == "error")
        // No elements, but one dim of 2^41: the index map alone would need 16 TiB (fuzz crash 4946a276).
        #expect(outcome(TileKernel(), [x, int64s([2], [0, (1 << 40) + 256])]) == "error")
        #expect(outcome(PadKernel(mode: .constant, attributePads: nil, attributeValue: 0), [x, int64s([4], [-2, 1 << 41, 0, 0])]) == "error")
        #expect(outcome(PadKernel(mode: .constant, attributePads: nil, attributeValue: 0), [x, int64s([4], [0, big, 0, 1])]) == "error")
        #expect(outcome(PadKernel(mode: .reflect, attributePads: nil, attributeValue: 0), [x, int64s([4], [0, small, 0, 0])]) == "error")
        #expect(outcome(ExpandKernel(), [x, int64s([3], [big, 2, 3])]) == "error")
        #expect(outcome(ConstantOfShapeKernel(value: Tensor(shape: [1], values: [Float(0)])), [int64s([2], [1 << 40, 1 << 40])]) == "error")
        #expect(outcome(ReshapeKernel(allowZero: false), [x, int64s([2], [big, -1])]) == "error")
        #expect(outcome(ReshapeKernel(allowZero: true), [x, int64s([3], [0, -1, 6])]) == "error")
    }

    @Test func rangesWithoutAFiniteLength() {
        let range = RangeKernel()
        #expect(outcome(range, [Tensor(scalar: Float(0)), Tensor(scalar: Float(-1e30)), Tensor(scalar: Float(1))]) == "ok [[0]]")
        #expect(outcome(range, [Tensor(scalar: Float(0)), Tensor(scalar: Float.infinity), Tensor(scalar: Float(1))]) == "error")
        #expect(outcome(range, [Tensor(scalar: Float(0)), Tensor(scalar: Float(1)), Tensor(scalar: Float.nan)]) == "error")
        #expect(outcome(range, [Tensor(scalar: Int64(0)), Tensor(scalar: big), Tensor(scalar: Int64(1))]) == "error")
        #expect(outcome(range, [Tensor(scalar: Int64(5)), Tensor(scalar: Int64(0)), Tensor(scalar: Int64(0))]) == "error")
    }

    @Test func nanAndInfinity() {
        let weird = floats([4], [.nan, .infinity, -.infinity, 1e30])
        #expect(outcome(CastKernel(target: .int8), [weird]).hasPrefix("ok"))
        #expect(outcome(CastKernel(target: .int64), [weird]).hasPrefix("ok"))
        #expect(outcome(CastKernel(target: .uint32), [weird]).hasPrefix("ok"))
        #expect(outcome(DynamicQuantizeLinearKernel(), [weird]) == "error")
        #expect(outcome(DynamicQuantizeLinearKernel(), [floats([2], [.nan, 1])]).hasPrefix("ok"))
        #expect(outcome(QuantizeLinearKernel(axis: 1, blockSize: 0, outputType: .int8), [weird, Tensor(scalar: Float(0))]).hasPrefix("ok"))
        #expect(outcome(ArithmeticKernel(op: .divide), [int64s([2], [small, 1]), int64s([2], [-1, 0])]).hasPrefix("ok"))
        #expect(outcome(ArithmeticKernel(op: .mod(fmod: false)), [int64s([2], [small, 1]), int64s([2], [-1, 0])]).hasPrefix("ok"))
    }
}

/// Attribute values at the limits of Int.
@Suite struct HostileAttributeTests {
    let pool = BufferPool(maxTensorBytes: 1 << 24)

    @Test func hugeBlockSizesAndOutputCounts() throws {
        let x = floats([2, 4], [1, 2, 3, 4, 5, 6, 7, 8])
        let q = QuantizeLinearKernel(axis: 1, blockSize: Int.max, outputType: .int8)
        // One block per row: valid, and no overflow computing the block count.
        #expect(try q.run([x, floats([2, 1], [1, 1])], pool).first??.shape == [2, 4])
        #expect(throws: (any Error).self) { try q.run([x, floats([2, 2], [1, 1, 1, 1])], pool) }
        let split = SplitKernel(axis: 1, outputCount: 2, attributeSplit: nil, numOutputs: Int.max)
        #expect(throws: (any Error).self) { try split.run([x], pool) }
    }
}
