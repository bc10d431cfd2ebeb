// Activation quantization: round half to even, saturation, per-token scales, special
// values, and bit-identical results on every ISA path.
import SQIR
import SQKernels
import Testing

/// Quantize with the C API; `scale == nil` selects per-token mode.
func quantize(_ x: [Float], rows: Int, cols: Int, scale: Float?, qmin: Int32 = -127)
    -> (q: [Int8], scales: [Float]) {
    var q = [Int8](repeating: 99, count: rows * cols)
    var scales = [Float](repeating: -1, count: rows)
    x.withUnsafeBufferPointer { x in
        q.withUnsafeMutableBufferPointer { q in
            scales.withUnsafeMutableBufferPointer { s in
                sq_quantize_rows_s8(rows, cols, x.baseAddress, cols, q.baseAddress, cols,
                                    scale == nil ? s.baseAddress : nil, scale ?? 0, qmin)
            }
        }
    }
    return (q, scales)
}

extension KernelTests {
@Suite("activation quantization")
struct QuantizeTests {
    @Test("ties round to even, on every ISA and at every position of a vector")
    func tiesToEven() {
        // x.5 values from -20.5 to 19.5, 41 of them (tails for 8- and 16-lane paths).
        let x = (0..<41).map { Float($0 - 20) - 0.5 }
        let expected: [Int8] = x.map { value in
            let floor = value.rounded(.down)
            let even = Int8(floor).isMultiple(of: 2) ? floor : floor + 1
            return Int8(even)
        }
        forEachISA { isa in
            #expect(quantize(x, rows: 1, cols: 41, scale: 1).q == expected, "\(isaName(isa))")
        }
        #expect(expected[20] == 0 && expected[21] == 0 && expected[22] == 2)  // -0.5, 0.5, 1.5
    }

    @Test("saturation to [-127, 127] or [-128, 127]; NaN to the low end")
    func saturation() {
        let x: [Float] = [1000, -1000, 127.4, -127.6, -128.2, .infinity, -.infinity, .nan, 3, -3]
        forEachISA { isa in
            #expect(quantize(x, rows: 1, cols: x.count, scale: 1).q
                        == [127, -127, 127, -127, -127, 127, -127, -127, 3, -3], "\(isaName(isa))")
            #expect(quantize(x, rows: 1, cols: x.count, scale: 1, qmin: -128).q
                        == [127, -128, 127, -128, -128, 127, -128, -128, 3, -3], "\(isaName(isa))")
        }
    }

    @Test("per-token scale is absmax/127, the absmax element maps to ±127")
    func perToken() {
        let x: [Float] = [0.5, -127, 63.5, 1.5,
                          0, 0, 0, 0,
                          3, 1, -1, 0.015]
        forEachISA { isa in
            let (q, scales) = quantize(x, rows: 3, cols: 4, scale: nil)
            #expect(scales == [1, 0, Float(3) / 127], "\(isaName(isa))")
            #expect(q[0..<4] == [0, -127, 64, 2], "\(isaName(isa))")  // scale 1: ties to even
            #expect(q[4..<8] == [0, 0, 0, 0], "\(isaName(isa)) zero row")
            #expect(q[8] == 127 && q[9] == 42 && q[10] == -42 && q[11] == 1, "\(isaName(isa))")
        }
    }

    @Test("a non-positive per-tensor scale quantizes to zero")
    func badScale() {
        forEachISA { _ in
            #expect(quantize([1, -2, 3], rows: 1, cols: 3, scale: 0).q == [0, 0, 0])
            #expect(quantize([1, -2, 3], rows: 1, cols: 3, scale: -1).q == [0, 0, 0])
            #expect(quantize([1, -2, 3], rows: 1, cols: 3, scale: .nan).q == [0, 0, 0])
        }
    }

    @Test("every ISA gives the bits of the scalar twin on random rows of many widths")
    func identicalAcrossISAs() {
        var rng = SplitMix64(seed: 6)
        for cols in [1, 7, 8, 15, 16, 17, 33, 100, 257] {
            let rows = 3
            // Values on a fine grid so that many land on exact .5 ties after scaling.
            let x = (0..<(rows * cols)).map { _ in Float(Int.random(in: -4000...4000, using: &rng)) / 16 }
            var results: [(q: [Int8], scales: [Float])] = []
            var perTensor: [[Int8]] = []
            forEachISA { _ in
                results.append(quantize(x, rows: rows, cols: cols, scale: nil))
                perTensor.append(quantize(x, rows: rows, cols: cols, scale: 0.5).q)
            }
            for result in results.dropFirst() {
                #expect(result.q == results[0].q, "cols \(cols)")
                #expect(result.scales.map(\.bitPattern) == results[0].scales.map(\.bitPattern))
            }
            for result in perTensor.dropFirst() { #expect(result == perTensor[0], "cols \(cols)") }
        }
    }
}
}  // extension KernelTests

// MARK: per-column dynamic quantization (O1's Kᵀ)

/// The scalar definition of sq_quantize_cols_dynamic_s8: the graph's ReduceMax(Abs) over
/// each column, Div, Max, then ONNX QuantizeLinear (x / s, round half to even, saturate,
/// NaN -> -128).
func quantizeColumnsReference(_ x: [Float], k: Int, n: Int, divisor: Float, minScale: Float) -> (q: [Int8], scales: [Float]) {
    var scales = [Float](repeating: 0, count: n)
    for j in 0..<n {
        var m: Float = -.greatestFiniteMagnitude
        for i in 0..<k { let v = abs(x[i * n + j]); m = m.isNaN || v.isNaN ? .nan : (m < v ? v : m) }
        let s = m / divisor
        scales[j] = s.isNaN || minScale.isNaN ? .nan : (s < minScale ? minScale : s)
    }
    var q = [Int8](repeating: 0, count: k * n)
    for i in 0..<k {
        for j in 0..<n {
            let v = (x[i * n + j] / scales[j]).rounded(.toNearestOrEven)
            q[i * n + j] = v.isNaN ? -128 : Int8(Swift.min(Swift.max(v, -128), 127))
        }
    }
    return (q, scales)
}

extension KernelTests {
@Suite("per-column dynamic quantization")
struct ColumnQuantizeTests {
    @Test("every ISA equals the graph's definition bit for bit: tails, NaN and ±inf columns, ties")
    func columnsMatchTheReference() {
        var rng = SplitMix64(seed: 11)
        for (k, n) in [(1, 1), (1, 17), (3, 8), (5, 15), (16, 16), (64, 256), (7, 65), (33, 129), (2, 200)] {
            var x = (0..<(k * n)).map { _ in Float.random(in: -3...3, using: &rng) }
            if n > 2 { x[(k - 1) * n + 1] = .nan }            // a NaN column
            if n > 4 { x[n - 1] = .infinity }                   // an inf column: s = inf, inf / inf = NaN -> -128
            if n > 6 { for i in 0..<k { x[i * n + 5] = 0 } }    // a zero column: s = min_scale
            if n > 9 { for i in 0..<k { x[i * n + 9] = i == 0 ? 127 : Float(i % 5) - 1.5 } }  // s = 1: ties to even
            for (divisor, minScale) in [(Float(127), Float.leastNormalMagnitude), (127, 0.02), (-3, 0)] {
                let want = quantizeColumnsReference(x, k: k, n: n, divisor: divisor, minScale: minScale)
                forEachISA { isa in
                    var q = [Int8](repeating: 99, count: k * n), scales = [Float](repeating: -1, count: n)
                    x.withUnsafeBufferPointer { xp in
                        q.withUnsafeMutableBufferPointer { qp in
                            scales.withUnsafeMutableBufferPointer { sp in
                                sq_quantize_cols_dynamic_s8(k, n, xp.baseAddress, qp.baseAddress, sp.baseAddress, divisor, minScale, -128)
                            }
                        }
                    }
                    #expect(q == want.q, "\(isaName(isa)) k \(k) n \(n) divisor \(divisor)")
                    #expect(scales.map(\.bitPattern) == want.scales.map(\.bitPattern), "\(isaName(isa)) k \(k) n \(n)")
                }
            }
        }
    }

    @Test("whole-tensor absmax propagates NaN on every ISA")
    func absmaxOfTensor() {
        forEachISA { isa in
            for n in [0, 1, 15, 16, 17, 100] {
                var x = (0..<n).map { Float($0) - 40 }
                #expect(sq_absmax_nan_f32(n, x) == x.map(abs).max() ?? 0, "\(isaName(isa)) \(n)")
                if n > 0 { x[n / 2] = .nan; #expect(sq_absmax_nan_f32(n, x).isNaN, "\(isaName(isa)) \(n)") }
            }
        }
    }
}
}
