// fp32 GEMM: every ISA path against a double-precision reference, edges, and the
// invariance of the result under any row / panel split (what threads do).
import SQIR
import SQKernels
import Testing

/// Shapes (m, k, n): tails of every tile size, K = 1, K across two K blocks (1024),
/// M across several row blocks (≈ 28), N across two column blocks (4 MiB of packed B:
/// 1024 columns when K fills a 1024 block), zero sizes.
let f32Shapes: [(m: Int, k: Int, n: Int)] = [
    (1, 1, 1), (1, 7, 33), (3, 5, 7), (17, 33, 65), (14, 64, 32), (15, 300, 31),
    (100, 40, 70), (29, 513, 97), (5, 1100, 40), (1, 576, 100), (31, 1030, 1100), (0, 5, 7), (4, 5, 0), (6, 0, 9),
]

extension KernelTests {
@Suite("fp32 GEMM")
struct GemmF32Tests {
    /// a·b (+ bias) (+ c0) in Double, and the scale of the terms for a tolerance.
    static func reference(a: [Float], b: [Float], m: Int, k: Int, n: Int, bias: [Float]?,
                          initial: [Float]?) -> (value: [Double], magnitude: [Double]) {
        var value = [Double](repeating: 0, count: m * n)
        var magnitude = value
        for i in 0..<m {
            for j in 0..<n {
                var sum = Double(initial?[i * n + j] ?? 0) + Double(bias?[j] ?? 0)
                var mag = abs(sum)
                for kk in 0..<k {
                    let term = Double(a[i * k + kk]) * Double(b[kk * n + j])
                    sum += term
                    mag += abs(term)
                }
                value[i * n + j] = sum
                magnitude[i * n + j] = mag
            }
        }
        return (value, magnitude)
    }

    @Test("every ISA matches the reference (plain, transposed, bias, accumulate)")
    func matchesReference() {
        var rng = SplitMix64(seed: 1)
        forEachISA { isa in
            for (index, shape) in f32Shapes.enumerated() {
                let (m, k, n) = shape
                let a = (0..<(m * k)).map { _ in Float.random(in: -1...1, using: &rng) }
                let b = (0..<(k * n)).map { _ in Float.random(in: -1...1, using: &rng) }
                let bias = (0..<n).map { _ in Float.random(in: -1...1, using: &rng) }
                let initial = (0..<(m * n)).map { _ in Float.random(in: -1...1, using: &rng) }
                let transposed = index % 2 == 1
                let source = transposed ? transpose(b, rows: k, cols: n) : b
                let packed = packF32(source, k: k, n: n, transposed: transposed)
                for variant in 0..<3 {  // plain, + bias, accumulate + bias
                    let useBias = variant >= 1, accumulate = variant == 2
                    var c = accumulate ? initial : [Float](repeating: .nan, count: m * n)
                    gemmF32(&c, a: a, packed: packed, m: m, n: n, k: k,
                            bias: useBias ? bias : nil, accumulate: accumulate)
                    let ref = Self.reference(a: a, b: b, m: m, k: k, n: n,
                                             bias: useBias ? bias : nil,
                                             initial: accumulate ? initial : nil)
                    var worst = 0.0
                    for e in 0..<(m * n) {
                        worst = max(worst, abs(Double(c[e]) - ref.value[e]) / (ref.magnitude[e] + 1e-30))
                    }
                    #expect(worst < 1e-5, "\(isaName(isa)) m\(m) k\(k) n\(n) variant \(variant): rel err \(worst)")
                }
            }
        }
    }

    @Test("row and panel splits give the same bits as one call, on every ISA")
    func splitInvariance() {
        var rng = SplitMix64(seed: 2)
        let (m, k, n) = (45, 1030, 1100)  // 35 panels in 2 column blocks, 2 K blocks, ragged rows
        let a = (0..<(m * k)).map { _ in Float.random(in: -1...1, using: &rng) }
        let b = (0..<(k * n)).map { _ in Float.random(in: -1...1, using: &rng) }
        let bias = (0..<n).map { _ in Float.random(in: -1...1, using: &rng) }
        let packed = packF32(b, k: k, n: n, transposed: false)
        forEachISA { isa in
            var whole = [Float](repeating: 0, count: m * n)
            gemmF32(&whole, a: a, packed: packed, m: m, n: n, k: k, bias: bias)
            var byPanels = [Float](repeating: 0, count: m * n)
            for p in 0..<panelCount(n) {
                gemmF32(&byPanels, a: a, packed: packed, m: m, n: n, k: k, panels: p..<(p + 1), bias: bias)
            }
            var byRows = [Float](repeating: 0, count: m * n)
            for rows in [0..<16, 16..<17, 17..<45] {
                gemmF32(&byRows, a: a, packed: packed, m: m, n: n, k: k, rows: rows, bias: bias)
            }
            #expect(whole.map(\.bitPattern) == byPanels.map(\.bitPattern), "\(isaName(isa)) panels")
            #expect(whole.map(\.bitPattern) == byRows.map(\.bitPattern), "\(isaName(isa)) rows")
        }
    }

    /// The attention blocks' products: A read in place (`sq_f32_gemm_small`) and B's first k
    /// rows out of a pack of more rows (`…_prefix`) give the packed GEMM's bits.
    @Test("small products and a prefix of packed B give the packed GEMM's bits, on every ISA",
          arguments: [(28, 64, 256), (13, 37, 70), (1, 40, 64), (28, 256, 64), (4, 1030, 33)])
    func smallAndPrefixGiveTheSameBits(m: Int, k: Int, n: Int) {
        var rng = SplitMix64(seed: 3)
        let rowsPacked = k + 21  // B packed with more rows than the product reads
        let a = (0..<(m * k)).map { _ in Float.random(in: -1...1, using: &rng) }
        let b = (0..<(rowsPacked * n)).map { _ in Float.random(in: -1...1, using: &rng) }
        let packedAll = packF32(b, k: rowsPacked, n: n, transposed: false)
        let packedK = packF32(Array(b[0..<(k * n)]), k: k, n: n, transposed: false)
        forEachISA { isa in
            var want = [Float](repeating: 0, count: m * n)
            gemmF32(&want, a: a, packed: packedK, m: m, n: n, k: k)
            var small = [Float](repeating: .nan, count: m * n), prefix = small
            a.withUnsafeBufferPointer { ap in
                packedAll.withUnsafeBufferPointer { bp in
                    small.withUnsafeMutableBufferPointer { cp in
                        #expect(sq_f32_gemm_small(m, n, k, ap.baseAddress, k, bp.baseAddress, rowsPacked * panelColumns,
                                                  0, panelCount(n), cp.baseAddress, n) == 0)
                    }
                    prefix.withUnsafeMutableBufferPointer { cp in
                        #expect(sq_f32_gemm_packed_prefix(m, n, k, ap.baseAddress, k, bp.baseAddress, rowsPacked * panelColumns,
                                                          0, panelCount(n), cp.baseAddress, n, nil, 0) == 0)
                    }
                }
            }
            #expect(small.map(\.bitPattern) == want.map(\.bitPattern), "\(isaName(isa)) small m\(m) k\(k) n\(n)")
            #expect(prefix.map(\.bitPattern) == want.map(\.bitPattern), "\(isaName(isa)) prefix m\(m) k\(k) n\(n)")
        }
    }

    @Test("writes exactly the requested panels and rows")
    func writesOnlyItsRange() {
        let (m, k, n) = (5, 3, 70)
        let a = [Float](repeating: 1, count: m * k)
        let packed = packF32([Float](repeating: 1, count: k * n), k: k, n: n, transposed: false)
        forEachISA { isa in
            var c = [Float](repeating: -7, count: m * n)
            gemmF32(&c, a: a, packed: packed, m: m, n: n, k: k, rows: 1..<3, panels: 1..<2)
            for i in 0..<m {
                for j in 0..<n {
                    let inside = (1..<3).contains(i) && (32..<64).contains(j)
                    #expect(c[i * n + j] == (inside ? 3 : -7), "\(isaName(isa)) (\(i), \(j))")
                }
            }
        }
    }

    @Test("dispatch: names, forcing an unsupported path fails")
    func dispatch() {
        #expect(String(cString: sq_isa_name(SQ_ISA_SCALAR)) == "scalar")
        #expect(String(cString: sq_isa_name(SQ_ISA_AVX512)) == "avx512")
        #expect(sq_force_isa(SQ_ISA_SCALAR) == 0)
        #expect(sq_isa_active() == SQ_ISA_SCALAR)
        if sq_isa_detected() != SQ_ISA_AVX512 {
            #expect(sq_force_isa(SQ_ISA_AVX512) == -1)
            #expect(sq_isa_active() == SQ_ISA_SCALAR)
        }
        #expect(sq_force_isa(sq_isa_detected()) == 0)
    }
}
}  // extension KernelTests
