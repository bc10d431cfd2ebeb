import Dispatch
import Foundation
import SQIR
@testable import SQRuntime
import Synchronization
import Testing

/// The shape memo (`PlanOptions.memoizeShapes`): shape arithmetic is skipped only when its
/// inputs repeat, and a run gives the same outputs as a plan without the memo.
@Suite struct ShapeMemoTests {
    /// r = Reshape(x, [shape(x)[0], -1]), n = shape(x)[0] * 2 + len, with x: f32[batch, seq].
    /// The exporter's pattern `Shape → Gather → Unsqueeze → Concat → Reshape`; `len` is a
    /// graph input (not shape arithmetic, so `Add` is not memoized).
    static func graph() -> TestGraph {
        let g = TestGraph()
        let x = g.input("x", .float, [.symbolic("batch"), .symbolic("seq")])
        let len = g.input("len", .int64, [])
        let shape = g.op("Shape", [x], name: "shape")
        let d0 = g.op("Gather", [shape, g.constant("zero", Tensor(scalar: Int64(0)))], name: "gather")
        let u = g.op("Unsqueeze", [d0, g.constant("axes", int64s([1], [0]))], name: "unsqueeze")
        let target = g.op("Concat", [u, g.constant("minus1", int64s([1], [-1]))], name: "concat",
                          attributes: [Attribute("axis", .int(0))])
        let r = g.op("Reshape", [x, target], name: "reshape")
        let doubled = g.op("Mul", [d0, g.constant("two", Tensor(scalar: Int64(2)))], name: "double")
        let n = g.op("Add", [doubled, len], name: "plus_len")
        g.output(r, target, n)
        return g
    }

    static let on = PlanOptions(memoizeShapes: true)

    static func inputs(_ batch: Int, _ seq: Int, len: Int64 = 5) -> [String: Tensor] {
        ["x": floats([batch, seq], (0..<(batch * seq)).map { Float($0) }), "len": Tensor(scalar: len)]
    }

    @Test func memoizesOnlyShapeArithmetic() throws {
        let plan = try Self.graph().plan(options: Self.on)
        // Shape, Gather, Unsqueeze, Concat and Mul; not Reshape (its data is an activation)
        // nor Add (it reads a graph input).
        #expect(plan.shapeMemoStats.steps == 5)
        let off = try Self.graph().plan()
        #expect(off.shapeMemoStats.steps == 0, "off by default")
    }

    @Test func invalidatesWhenShapesChange() throws {
        let plan = try Self.graph().plan(options: Self.on)
        let reference = try Self.graph().plan()
        // Repeats, changes of the memoized dim (batch), of the other dim only (seq: Shape
        // misses, Gather hits), of the non-shape input, and back.
        let runs: [(Int, Int, Int64)] = [(2, 3, 5), (2, 3, 5), (4, 3, 5), (2, 3, 5), (2, 6, 5), (2, 6, 9), (1, 6, 9), (1, 6, 9)]
        var lastHits = 0
        for (i, (batch, seq, len)) in runs.enumerated() {
            let inputs = Self.inputs(batch, seq, len: len)
            let got = try plan.run(inputs: inputs), want = try reference.run(inputs: inputs)
            for name in ["reshape", "concat", "plus_len"] {
                let g = try #require(got[name]), w = try #require(want[name])
                #expect(g.isIdentical(to: w), "run \(i), \(name): \(g.shape) vs \(w.shape)")
            }
            #expect(got["concat"]?.elements(as: Int64.self) == [Int64(batch), -1])
            #expect(got["plus_len"]?.elements(as: Int64.self) == [Int64(batch) * 2 + len])
            #expect(got["reshape"]?.shape == [batch, seq])
            let stats = plan.shapeMemoStats
            #expect(stats.hits + stats.misses == 5 * (i + 1))
            if i == 1 || i == 7 { #expect(stats.hits - lastHits == 5, "run \(i) repeats the last inputs") }
            if i == 2 { #expect(stats.hits == lastHits, "run 2 changes the batch: everything recomputes") }
            if i == 4 { #expect(stats.hits - lastHits == 3, "run 4 changes seq only: Shape and Gather (of the shape vector) recompute") }
            lastHits = stats.hits
        }
    }

    @Test func heldMemoOutputsAreNotOverwritten() throws {
        let plan = try Self.graph().plan(options: Self.on)
        let first = try #require(try plan.run(inputs: Self.inputs(2, 3))["concat"])
        for (b, s) in [(2, 3), (7, 1), (2, 3), (3, 3)] { _ = try plan.run(inputs: Self.inputs(b, s)) }
        #expect(first.elements(as: Int64.self) == [2, -1])
    }

    @Test func concurrentRunsWithDifferentShapesAgree() throws {
        let plan = try Self.graph().plan(options: Self.on)
        let shapes = (0..<16).map { (1 + $0 % 3, 1 + $0 % 5) }
        let results = Mutex([[Int64]](repeating: [], count: shapes.count))
        DispatchQueue.concurrentPerform(iterations: shapes.count) { i in
            for _ in 0..<20 {
                let y = (try? plan.run(inputs: Self.inputs(shapes[i].0, shapes[i].1)))?["concat"]?.elements(as: Int64.self) ?? []
                results.withLock { $0[i] = y }
                if y != [Int64(shapes[i].0), -1] { break }
            }
        }
        #expect(results.withLock { $0 } == shapes.map { [Int64($0.0), -1] })
    }
}

/// The kernel pool's workers across `keepAwake` and sleep: jobs finish and every piece
/// runs once, whether the workers spin, sleep or are woken.
@Suite struct SpinPoolAwakeTests {
    @Test func jobsRunAcrossAwakeAndSleep() throws {
        guard let pool = SpinPool.shared else { return }
        func job(_ pieces: Int) -> [Int] {
            let counts = Mutex([Int](repeating: 0, count: pieces))
            let ran = pool.run(pieces: pieces) { i in counts.withLock { $0[i] += 1 } }
            if !ran { return [Int](repeating: 1, count: pieces) }
            return counts.withLock { $0 }
        }
        for round in 0..<4 {
            // Round 3 leaves by throwing: the awake count must still drop.
            do { try pool.keepAwake {
                for pieces in [2, 3, 8] {
                    #expect(job(pieces) == [Int](repeating: 1, count: pieces), "round \(round)")
                }
                // Longer than the spin time: the workers must stay awake and still take jobs.
                Thread.sleep(forTimeInterval: 0.001)
                #expect(job(4) == [1, 1, 1, 1])
                pool.keepAwake { #expect(job(2) == [1, 1]) }  // nested
                if round == 3 { throw CancellationError() }
            } } catch is CancellationError {}
            // After the last caller left, workers fall asleep; the next job wakes them.
            Thread.sleep(forTimeInterval: 0.002)
            #expect(job(5) == [1, 1, 1, 1, 1])
        }
    }
}
