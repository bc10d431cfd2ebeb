// int8 GEMM: exact int32 results on every ISA path (random, extremes, edges), the fused
// epilogue bit-identical to its scalar definition, and split invariance.
import SQIR
import SQKernels
import Testing

/// Shapes (m, k, n): tails of the 8x32 / 4x8 tiles and of the k-quads, K = 1, zero sizes.
let int8Shapes: [(m: Int, k: Int, n: Int)] = [
    (1, 1, 1), (1, 3, 31), (3, 5, 7), (9, 130, 33), (8, 64, 32), (17, 33, 65),
    (70, 77, 40), (1, 576, 100), (0, 5, 7), (4, 5, 0), (6, 0, 9),
]

extension KernelTests {
@Suite("int8 GEMM")
struct GemmInt8Tests {
    static func randomInt8(_ count: Int, using rng: inout SplitMix64) -> [Int8] {
        (0..<count).map { _ in Int8(truncatingIfNeeded: rng.next()) }
    }

    @Test("exact int32 on every ISA: random operands, plain and transposed B")
    func exactRandom() {
        var rng = SplitMix64(seed: 3)
        forEachISA { isa in
            for (index, (m, k, n)) in int8Shapes.enumerated() {
                let a = Self.randomInt8(m * k, using: &rng)
                let b = Self.randomInt8(k * n, using: &rng)
                let transposed = index % 2 == 0
                let packed = packS8(transposed ? transpose(b, rows: k, cols: n) : b,
                                    k: k, n: n, transposed: transposed)
                var out = [Int32](repeating: 0x1234_5678, count: m * n)
                gemmS8Int32(a: a, packed: packed, m: m, n: n, k: k, into: &out)
                #expect(out == referenceS8(a: a, b: b, m: m, n: n, k: k),
                        "\(isaName(isa)) m\(m) k\(k) n\(n) transposed \(transposed)")
            }
        }
    }

    @Test("exact int32 with extreme operands (all -128 / 127), long K")
    func exactExtremes() {
        let (m, k, n) = (9, 1031, 35)
        let cases: [(Int8, Int8)] = [(-128, -128), (-128, 127), (127, 127), (127, -128)]
        forEachISA { isa in
            for (va, vb) in cases {
                let a = [Int8](repeating: va, count: m * k)
                let b = [Int8](repeating: vb, count: k * n)
                var out = [Int32](repeating: 0, count: m * n)
                gemmS8Int32(a: a, packed: packS8(b, k: k, n: n, transposed: false),
                            m: m, n: n, k: k, into: &out)
                let expected = Int32(k) * Int32(va) * Int32(vb)
                #expect(out.allSatisfy { $0 == expected }, "\(isaName(isa)) a=\(va) b=\(vb)")
            }
        }
    }

    @Test("float epilogue equals float(acc) * (sa * sb) + bias bit for bit, every ISA")
    func epilogue() {
        var rng = SplitMix64(seed: 4)
        let (m, k, n) = (19, 70, 45)
        let a = Self.randomInt8(m * k, using: &rng)
        let b = Self.randomInt8(k * n, using: &rng)
        let packed = packS8(b, k: k, n: n, transposed: false)
        let acc = referenceS8(a: a, b: b, m: m, n: n, k: k)
        let rowScales = (0..<m).map { _ in Float.random(in: 0.001...0.1, using: &rng) }
        let colScales = (0..<n).map { _ in Float.random(in: 0.001...0.1, using: &rng) }
        let bias = (0..<n).map { _ in Float.random(in: -1...1, using: &rng) }
        let variants: [(sa: [Float], sb: [Float], bias: [Float]?)] = [
            (rowScales, colScales, bias), (rowScales, [0.02], nil),
            ([0.05], colScales, bias), ([0.05], [0.02], nil),
        ]
        forEachISA { isa in
            for (index, variant) in variants.enumerated() {
                var out = [Float](repeating: .nan, count: m * n)
                gemmS8Float(a: a, packed: packed, m: m, n: n, k: k, scaleA: variant.sa,
                            scaleB: variant.sb, bias: variant.bias, into: &out)
                var expected = [Float](repeating: 0, count: m * n)
                for i in 0..<m {
                    for j in 0..<n {
                        let sa = variant.sa.count == m ? variant.sa[i] : variant.sa[0]
                        let sb = variant.sb.count == n ? variant.sb[j] : variant.sb[0]
                        let value = Float(acc[i * n + j]) * (sa * sb)
                        expected[i * n + j] = variant.bias.map { value + $0[j] } ?? value
                    }
                }
                #expect(out.map(\.bitPattern) == expected.map(\.bitPattern),
                        "\(isaName(isa)) variant \(index)")
            }
        }
    }

    @Test("row and panel splits give the same bits as one call, on every ISA")
    func splitInvariance() {
        var rng = SplitMix64(seed: 5)
        let (m, k, n) = (41, 99, 100)
        let a = Self.randomInt8(m * k, using: &rng)
        let b = Self.randomInt8(k * n, using: &rng)
        let packed = packS8(b, k: k, n: n, transposed: false)
        let rowScales = (0..<m).map { _ in Float.random(in: 0.001...0.1, using: &rng) }
        let colScales = (0..<n).map { _ in Float.random(in: 0.001...0.1, using: &rng) }
        forEachISA { isa in
            var whole = [Float](repeating: 0, count: m * n)
            gemmS8Float(a: a, packed: packed, m: m, n: n, k: k, scaleA: rowScales,
                        scaleB: colScales, bias: nil, into: &whole)
            var byRows = [Float](repeating: 0, count: m * n)
            for rows in [0..<16, 16..<17, 17..<21, 21..<41] {
                gemmS8Float(a: a, packed: packed, m: m, n: n, k: k, scaleA: rowScales,
                            scaleB: colScales, bias: nil, rows: rows, into: &byRows)
            }
            var byPanels = [Float](repeating: 0, count: m * n)
            for p in 0..<panelCount(n) {
                gemmS8Float(a: a, packed: packed, m: m, n: n, k: k, scaleA: rowScales,
                            scaleB: colScales, bias: nil, panels: p..<(p + 1), into: &byPanels)
            }
            #expect(whole.map(\.bitPattern) == byRows.map(\.bitPattern), "\(isaName(isa)) rows")
            #expect(whole.map(\.bitPattern) == byPanels.map(\.bitPattern), "\(isaName(isa)) panels")
        }
    }

    @Test("packed size and correction terms")
    func packing() {
        #expect(sq_s8_packed_size(5, 33) == 2 * 2 * 128 + 64 * 4)
        #expect(sq_s8_packed_size(0, 0) == 0)
        let b: [Int8] = [1, -2, 3, 4, 5, -6]  // [k 2, n 3]
        let packed = packS8(b, k: 2, n: 3, transposed: false)
        let correction = packed[128..<(128 + 12)].withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) }
        let expected: [Int32] = [-640, -384, 384]  // -128 * column sums 5, 3, -3
        #expect(correction == expected)
    }
}
}  // extension KernelTests
