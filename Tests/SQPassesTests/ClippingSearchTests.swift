import Foundation
import SQIR
import Testing
@testable import SQPasses

/// `MagnitudeHistogram` and the static ranges of `quantize{calibration=percentile|mse}` on
/// synthetic distributions: percentiles against numpy's, the MSE range against the exact
/// Q/DQ error computed on the data itself.
@Suite struct ClippingSearchTests {
    /// Deterministic samples: `count` standard normals (Box–Muller) and `outliers` values of
    /// magnitude `outlierMagnitude` (alternating signs).
    static func data(count: Int, outliers: Int = 0, outlierMagnitude: Float = 0, seed: UInt64 = 14) -> [Float] {
        var rng = SplitMix64(seed: seed)
        var out: [Float] = []
        out.reserveCapacity(count + outliers)
        while out.count < count {
            let u1 = Swift.max(Double(rng.next() >> 11) / Double(1 << 53), 1e-300)
            let u2 = Double(rng.next() >> 11) / Double(1 << 53)
            out.append(Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)))
        }
        for i in 0..<outliers { out.append(i % 2 == 0 ? outlierMagnitude : -outlierMagnitude) }
        return out
    }

    static func histogram(_ values: [Float]) -> MagnitudeHistogram {
        var h = MagnitudeHistogram()
        values.withUnsafeBufferPointer { h.add($0) }
        return h
    }

    /// The exact mean squared error of symmetric int8 Q/DQ with range r (Δ = r/127, codes
    /// clamped to [-127, 127]), on the values themselves.
    static func exactError(_ values: [Float], range: Float) -> Double {
        let step = Double(range) / 127
        var sum = 0.0
        for v in values {
            let q = Swift.min(Swift.max((Double(v) / step).rounded(.toNearestOrEven), -127), 127)
            let e = Double(v) - q * step
            sum += e * e
        }
        return sum / Double(values.count)
    }

    /// Laplace samples (scale b = 1): a heavy tail whose 8-bit MSE-optimal clip is known,
    /// ≈ 9.9 b (Banner et al., "Post-training 4-bit quantization", ACIQ: α* ≈ 9.89 b for 8
    /// bits), below the maximum of 200 000 samples (≈ ln(200 000) b ≈ 12 b).
    static func laplace(count: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<count).map { i in
            let u = Swift.max(Double(rng.next() >> 11) / Double(1 << 53), 1e-300)
            return Float(-log(u)) * (i % 2 == 0 ? 1 : -1)
        }
    }

    @Test func mseRangeOfALaplaceIsBelowTheMaximum() {
        let values = Self.laplace(count: 200_000, seed: 11)
        let h = Self.histogram(values)
        let range = h.mseOptimalRange()
        #expect(range < h.maxMagnitude - 1, "MSE range \(range), max \(h.maxMagnitude)")
        #expect(range > 8.5 && range < 11.5, "MSE range \(range), expected ≈ 9.9")
        // On the data itself: better than the maximum, and no range on a grid beats it by
        // more than the histogram's resolution.
        let chosen = Self.exactError(values, range: range)
        #expect(chosen < Self.exactError(values, range: h.maxMagnitude))
        for r: Float in [6, 7, 8, 9, 10, 11, 12, 14] {
            #expect(chosen <= Self.exactError(values, range: r) * 1.02, "range \(r) beats the MSE choice \(range)")
        }
    }

    @Test func mseKeepsMassiveOutliersThatDominateTheError() {
        // 20 values at ±1000 among 200 000 normals: clipping them costs far more squared error
        // than rounding the bulk to 0, so the MSE range is the maximum (why calibration=mse
        // alone cannot rescue SmolLM2's down_proj inputs: docs/smoothquant.md).
        let values = Self.data(count: 200_000, outliers: 20, outlierMagnitude: 1000)
        let h = Self.histogram(values)
        #expect(h.mseOptimalRange() == 1000)
    }

    @Test func mseRangeWithoutOutliersStaysNearTheMaximum() {
        // Uniform |x| on [0, 1): clipping only loses; the best range is the maximum or close.
        var rng = SplitMix64(seed: 3)
        let values = (0..<100_000).map { _ in Float(Double(rng.next() >> 11) / Double(1 << 53)) }
        let h = Self.histogram(values)
        let range = h.mseOptimalRange()
        #expect(range >= 0.97 * h.maxMagnitude && range <= h.maxMagnitude, "\(range) vs max \(h.maxMagnitude)")
    }

    @Test func modelledErrorMatchesTheExactError() {
        let values = Self.data(count: 100_000, outliers: 10, outlierMagnitude: 300)
        let h = Self.histogram(values)
        for r: Float in [3, 6, 10, 30, 300] {
            let modelled = h.quantizationError(range: Double(r))
            let exact = Self.exactError(values, range: r)
            #expect(abs(modelled - exact) <= 0.05 * exact, "range \(r): histogram \(modelled), exact \(exact)")
        }
    }

    @Test func histogramsMergeExactly() {
        let a = Self.data(count: 5000, outliers: 3, outlierMagnitude: 77, seed: 1)
        let b = Self.data(count: 7000, seed: 2).map { $0 * 1e-3 } + [0, -0, 1e-30, .nan, .infinity]
        var merged = Self.histogram(a)
        merged.merge(Self.histogram(b))
        #expect(merged == Self.histogram(a + b))
        #expect(merged.total == UInt64(a.count + b.count - 2))  // NaN and inf are not counted
        #expect(merged.zeroCount == 3)
    }

    @Test func binEdgesAreFixedAndLogarithmic() {
        let perOctave = MagnitudeHistogram.binsPerOctave
        #expect(MagnitudeHistogram.lowerEdge(0) == pow(2.0, Double(MagnitudeHistogram.minExponent)))
        // 1.0 starts a bin; the next bin starts at 1 + 1/32.
        let one = -MagnitudeHistogram.minExponent * perOctave
        #expect(MagnitudeHistogram.lowerEdge(one) == 1)
        #expect(MagnitudeHistogram.lowerEdge(one + 1) == 1 + 1 / Double(perOctave))
        #expect(MagnitudeHistogram.lowerEdge(one + perOctave) == 2)
        #expect(MagnitudeHistogram.bin(ofMagnitudeBits: Float(1.5).bitPattern) == one + perOctave / 2)
    }

    /// numpy's `np.percentile(np.abs(x), p)` (method "linear") on the same data: within one
    /// bin (1/32 of an octave, 2.2%).
    @Test(.enabled(if: SmoothQuantFixtures.hasPython, "needs .venv"), arguments: [50.0, 99.0, 99.9, 99.99, 100.0])
    func percentileMatchesNumpy(_ p: Double) throws {
        let values = Self.data(count: 100_000, outliers: 30, outlierMagnitude: 500, seed: 7)
        let dir = try SmoothQuantFixtures.temporaryDirectory()
        defer { SmoothQuantFixtures.cleanUp(dir) }
        let file = dir + "/x.f32"
        try values.withUnsafeBufferPointer { Data(buffer: $0) }.write(to: URL(fileURLWithPath: file))
        let python = try #require(SmoothQuantFixtures.python)
        let (status, output) = try SmoothQuantFixtures.execute(python, ["-c", """
            import sys, numpy as np
            x = np.fromfile(sys.argv[1], dtype=np.float32)
            print(repr(float(np.percentile(np.abs(x), float(sys.argv[2])))))
            """, file, String(p)])
        try #require(status == 0, "\(output)")
        let numpy = try #require(Double(output.trimmingCharacters(in: .whitespacesAndNewlines)))
        let mine = Double(Self.histogram(values).percentile(p))
        #expect(abs(mine - numpy) <= numpy / Double(MagnitudeHistogram.binsPerOctave) * 0.75,
                "p\(p): histogram \(mine), numpy \(numpy)")
    }

    @Test func weightMSEClipsRareOutliersOfALargeWeight() throws {
        // 512 × 512 normal weights (σ 0.02) with two elements at ±1: rounding everything
        // with Δ = 1/127 costs more than clipping the two; the MSE range is about 0.6.
        // A small weight with the same outliers keeps its maximum (each outlier weighs more).
        func range(k: Int, n: Int) throws -> Float? {
            let t = SQTestGraph()
            let x = t.input("x", [.known(1), .known(4), .known(k)])
            var values = Self.data(count: k * n, seed: 5).map { $0 * 0.02 }
            values[5] = 1
            values[k * n - 3] = -1
            let w = t.constant("w", shape: [k, n], values)
            t.output(t.op("MatMul", "fc", [x, w]))
            let layer = try #require(LinearLayer(try t.the("fc")))
            #expect(WeightCalibration.max.perTensorRange(layer) == nil)
            return WeightCalibration.mse.perTensorRange(layer)
        }
        let large = try #require(try range(k: 512, n: 512))
        #expect(large > 0.4 && large < 0.8, "range \(large)")
        let small = try #require(try range(k: 16, n: 16))
        #expect(small >= 0.97, "range \(small)")
    }
}
