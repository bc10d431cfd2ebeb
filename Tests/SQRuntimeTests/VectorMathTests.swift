import Foundation
@testable import SQRuntime
import Testing

/// The 8-lane exp, erf, tanh and sigmoid against the C library, over dense grids and the
/// special values (±0, ±inf, NaN, under/overflow edges).
@Suite struct VectorMathTests {
    static let specials: [Float] = [0, -0, 1e-30, -1e-30, 1e-8, -1e-8, .infinity, -.infinity, .nan,
                                    -87.4, -87.3, -100, -1000, 88.3, 88.5, 88.72, 88.8, 100, -3.4e38, 3.4e38]

    /// Largest error of `vector` against `reference`, relative where |ref| > 1e-30 else absolute.
    static func worstError(_ inputs: [Float], _ vector: (Float8) -> Float8, _ reference: (Double) -> Double) -> (Double, Float) {
        var worst = (0.0, Float(0))
        var i = 0
        while i < inputs.count {
            var v = Float8()
            for j in 0..<8 { v[j] = inputs[min(i + j, inputs.count - 1)] }
            let r = vector(v)
            for j in 0..<8 where i + j < inputs.count {
                let want = reference(Double(v[j]))
                let got = Double(r[j])
                if want.isNaN { if !got.isNaN { return (.infinity, v[j]) }; continue }
                if want.isInfinite || Float(want).isInfinite { if Float(want) != r[j] { return (.infinity, v[j]) }; continue }
                let err = abs(got - want) / max(abs(want), 1e-30)
                let absolute = abs(got - want)
                let e = min(err, absolute < 1e-37 ? 0 : err)
                if e > worst.0 { worst = (e, v[j]) }
            }
            i += 8
        }
        return worst
    }

    static func grid(_ low: Float, _ high: Float, _ count: Int) -> [Float] {
        (0..<count).map { low + (high - low) * Float($0) / Float(count - 1) } + specials
    }

    @Test func expMatchesLibm() {
        let (err, at) = Self.worstError(Self.grid(-90, 89, 200_001), vectorExp) { Foundation.exp($0) }
        #expect(err < 3e-7, "exp relative error \(err) at \(at)")
    }

    @Test func erfMatchesLibm() {
        let (err, at) = Self.worstError(Self.grid(-6, 6, 200_001) + [1e-4, -3e-3, 0.4999, 0.5001], vectorErf) { Foundation.erf($0) }
        #expect(err < 1e-6, "erf relative error \(err) at \(at)")
    }

    @Test func tanhMatchesLibm() {
        let (err, at) = Self.worstError(Self.grid(-12, 12, 200_001) + [0.1499, 0.1501, -0.15, 0.0682], vectorTanh) { Foundation.tanh($0) }
        #expect(err < 1e-6, "tanh relative error \(err) at \(at)")
    }

    @Test func sigmoidMatchesLibm() {
        let (err, at) = Self.worstError(Self.grid(-80, 80, 200_001), vectorSigmoid) { 1 / (1 + Foundation.exp(-$0)) }
        #expect(err < 1e-6, "sigmoid relative error \(err) at \(at)")
    }
}
