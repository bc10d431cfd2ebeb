// Vector float math (vmath.c): every ISA path against Foundation's functions in double,
// over dense grids, random values, tail lengths and the special values.
import Foundation
import SQIR
import SQKernels
import Testing

extension KernelTests {
@Suite("vector math")
struct VMathTests {
    /// An op, its reference in double, and its error budget:
    /// |y − ref| ≤ relative·|ref| + absolute·max(1, |x|) + floor (1.2e-38: AVX2 flushes results
    /// below the smallest normal float to 0).
    struct Case: CustomStringConvertible, @unchecked Sendable {
        let name: String
        let op: sq_vmath_op
        let reference: @Sendable (Double) -> Double
        let relative: Double
        let absolute: Double
        /// Absolute slack for results near 0 (1.2e-38 unless said otherwise).
        var floor: Double = 1.2e-38
        var description: String { name }
    }

    static let cases: [Case] = [
        Case(name: "exp", op: SQ_VM_EXP, reference: { Foundation.exp($0) }, relative: 1e-6, absolute: 0),
        Case(name: "sigmoid", op: SQ_VM_SIGMOID, reference: { 1 / (1 + Foundation.exp(-$0)) }, relative: 2e-6, absolute: 0),
        // Below x ≈ −88.7, e^−x overflows float and x/(1+e^−x) is −0 (as Mul(x, Sigmoid(x)) in
        // float gives), while the true value is down to −1e−36.
        Case(name: "silu", op: SQ_VM_SILU, reference: { $0 / (1 + Foundation.exp(-$0)) }, relative: 2e-6, absolute: 0, floor: 1e-35),
        Case(name: "tanh", op: SQ_VM_TANH, reference: { Foundation.tanh($0) }, relative: 2e-6, absolute: 3e-7),
        Case(name: "erf", op: SQ_VM_ERF, reference: { Foundation.erf($0) }, relative: 2e-6, absolute: 3e-7),
        Case(name: "gelu", op: SQ_VM_GELU, reference: { 0.5 * $0 * (1 + Foundation.erf($0 / 2.0.squareRoot())) },
             relative: 2e-6, absolute: 3e-7),
    ]

    /// A dense grid over [-110, 110], finer near 0, random values, and the special values.
    static func inputs() -> [Float] {
        var xs: [Float] = []
        for i in -110_000...110_000 { xs.append(Float(i) / 1000) }
        for i in -10_000...10_000 { xs.append(Float(i) / 1e6) }
        var rng = SplitMix64(seed: 7)
        for _ in 0..<20_000 { xs.append(Float.random(in: -200...200, using: &rng)) }
        xs += [0, -0.0, .infinity, -.infinity, .nan, .leastNonzeroMagnitude, -.leastNonzeroMagnitude,
               .leastNormalMagnitude, .greatestFiniteMagnitude, -.greatestFiniteMagnitude, 1e30, -1e30,
               88.37, 88.38, 88.72, 88.73, 88.8, 89, -87.33, -87.34, -88, -103.9, -104, -105,
               0.15, -0.15, 0.1499999, 0.5, -0.5, 0.4999999, 4, -4, 4.0000005]
        return xs
    }

    static func apply(_ op: sq_vmath_op, _ x: [Float]) -> [Float] {
        var y = [Float](repeating: 12345, count: x.count)
        x.withUnsafeBufferPointer { src in
            y.withUnsafeMutableBufferPointer { dst in
                #expect(sq_vmath_f32(op, src.count, src.baseAddress, dst.baseAddress) == 0)
            }
        }
        return y
    }

    @Test("every ISA is within its error budget of Foundation", arguments: cases)
    func accuracy(_ c: Case) {
        let xs = Self.inputs()
        forEachISA { isa in
            let ys = Self.apply(c.op, xs)
            var worst = 0.0, worstX: Float = 0, failures = 0
            for (x, y) in zip(xs, ys) {
                let ref = c.reference(Double(x))
                if ref.isNaN {
                    if !y.isNaN { failures += 1; if failures < 5 { Issue.record("\(c) \(isaName(isa)): f(\(x)) = \(y), expected NaN") } }
                    continue
                }
                if ref.isInfinite || Float(ref).isInfinite {
                    // Beyond the float range: the exact limit.
                    if Double(y) != Double(Float(ref)) {
                        failures += 1
                        if failures < 5 { Issue.record("\(c) \(isaName(isa)): f(\(x)) = \(y), expected \(Float(ref))") }
                    }
                    continue
                }
                let budget = c.relative * abs(ref) + c.absolute * max(1, abs(Double(x))) + c.floor
                let error = abs(Double(y) - ref)
                if error > budget {
                    failures += 1
                    if failures < 5 { Issue.record("\(c) \(isaName(isa)): f(\(x)) = \(y), reference \(ref), error \(error) > \(budget)") }
                }
                if error / budget > worst { (worst, worstX) = (error / budget, x) }
            }
            #expect(failures == 0, "\(c) \(isaName(isa)): \(failures) of \(xs.count) outside the budget")
            print("vmath \(c) \(isaName(isa)): worst error \(String(format: "%.2f", worst)) of the budget at x = \(worstX)")
        }
    }

    @Test("tails of every length and in-place use give the same values as full vectors", arguments: cases)
    func tails(_ c: Case) {
        var rng = SplitMix64(seed: 11)
        let xs = (0..<40).map { _ in Float.random(in: -6...6, using: &rng) }
        forEachISA { isa in
            let full = Self.apply(c.op, xs)
            for n in 0...xs.count {
                let part = Self.apply(c.op, Array(xs[..<n]))
                #expect(part == Array(full[..<n]), "\(c) \(isaName(isa)) n=\(n)")
            }
            var inPlace = xs
            inPlace.withUnsafeMutableBufferPointer { p in
                _ = sq_vmath_f32(c.op, p.count, p.baseAddress, p.baseAddress)
            }
            #expect(inPlace == full, "\(c) \(isaName(isa)) in place")
        }
    }

    @Test("an unknown op is refused and writes nothing")
    func unknownOp() {
        var y: [Float] = [7]
        let x: [Float] = [1]
        x.withUnsafeBufferPointer { src in
            y.withUnsafeMutableBufferPointer { dst in
                #expect(sq_vmath_f32(SQ_VM_COUNT, 1, src.baseAddress, dst.baseAddress) == -1)
            }
        }
        #expect(y == [7])
    }

    @Test("softmax rows match a double reference on every ISA (tails, -inf, large values)")
    func softmax() {
        var rng = SplitMix64(seed: 5)
        forEachISA { isa in
            for n in [1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 128, 255, 256, 384] {
                let rows = 3
                var x = (0..<(rows * n)).map { _ in Float.random(in: -30...30, using: &rng) }
                x[0] = 80  // large logits must not overflow
                if n > 2 { x[n + 1] = -.infinity }  // a masked position in row 1
                var y = [Float](repeating: .nan, count: x.count)
                x.withUnsafeBufferPointer { s in
                    y.withUnsafeMutableBufferPointer { d in sq_softmax_rows_f32(rows, n, s.baseAddress, d.baseAddress) }
                }
                for r in 0..<rows {
                    // x − max is rounded in float as the kernels do (at |x − max| ≈ 100 that
                    // rounding alone moves e^(x − max) by ~4e-6 relative).
                    let row = Array(x[(r * n)..<((r + 1) * n)])
                    let m = row.max()!
                    let e = row.map { Foundation.exp(Double($0 - m)) }
                    let sum = e.reduce(0, +)
                    for j in 0..<n {
                        let ref = e[j] / sum, got = Double(y[r * n + j])
                        #expect(abs(got - ref) <= 3e-6 * ref + 1.2e-38, "\(isaName(isa)) n=\(n) row \(r) col \(j): \(got) vs \(ref)")
                    }
                }
            }
            // A row of -inf only: 0 / 0 as in the float reference (NaN), not a crash.
            let x = [Float](repeating: -.infinity, count: 5)
            var y = [Float](repeating: 0, count: 5)
            x.withUnsafeBufferPointer { s in
                y.withUnsafeMutableBufferPointer { d in sq_softmax_rows_f32(1, 5, s.baseAddress, d.baseAddress) }
            }
            let allNaN = y.allSatisfy { $0.isNaN }
            #expect(allNaN, "\(isaName(isa)): \(y)")
        }
    }
}
}
