import SQIR
@testable import SQRuntime
import Testing

/// Elementwise broadcasting against a per-element reference (numpy's rule written out
/// with index arithmetic), on random shape pairs that mix size-1, missing and full dims,
/// so every row-collapsing case of `BroadcastIteration` is hit.
@Suite struct BroadcastTests {
    static func reference(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) -> (shape: [Int], values: [Float]) {
        let rank = max(a.rank, b.rank)
        let pa = [Int](repeating: 1, count: rank - a.rank) + a.shape
        let pb = [Int](repeating: 1, count: rank - b.rank) + b.shape
        let shape = zip(pa, pb).map { max($0, $1) }
        let count = shape.reduce(1, *)
        let va = a.elements(as: Float.self), vb = b.elements(as: Float.self)
        var out: [Float] = []
        for flat in 0..<count {
            var rest = flat, ia = 0, ib = 0, sa = 1, sb = 1
            for d in stride(from: rank - 1, through: 0, by: -1) {
                let coordinate = rest % shape[d]
                rest /= shape[d]
                if pa[d] != 1 { ia += coordinate * sa }
                if pb[d] != 1 { ib += coordinate * sb }
                sa *= pa[d]
                sb *= pb[d]
            }
            out.append(f(va[ia], vb[ib]))
        }
        return (shape, out)
    }

    @Test func randomShapesMatchTheReference() throws {
        var rng = SplitMix64(seed: 42)
        let pool = BufferPool(maxTensorBytes: 1 << 30)
        for _ in 0..<300 {
            let rank = Int.random(in: 0...4, using: &rng)
            let full = (0..<rank).map { _ in Int.random(in: 1...4, using: &rng) }
            // Each dim kept or set to 1, then a random number of leading dims dropped.
            func variant() -> [Int] {
                let dims = full.map { Bool.random(using: &rng) ? 1 : $0 }
                return Array(dims.dropFirst(Int.random(in: 0...rank, using: &rng)))
            }
            let sa = variant(), sb = variant()
            let a = floats(sa, (0..<sa.reduce(1, *)).map { _ in Float(Int.random(in: -9...9, using: &rng)) })
            let b = floats(sb, (0..<sb.reduce(1, *)).map { _ in Float(Int.random(in: -9...9, using: &rng)) })
            let want = Self.reference(a, b, -)
            let got = try arithmetic(.subtract, a, b, pool)
            #expect(got.shape == want.shape, "\(sa) - \(sb)")
            #expect(got.elements(as: Float.self) == want.values, "\(sa) - \(sb)")
        }
    }
}
