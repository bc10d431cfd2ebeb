import Foundation
import SQIR
import Testing
@testable import SQPasses

/// `smooth{alpha=auto}`'s search range: `alpha-min` / `alpha-max` (default 0.30…0.90, step 0.05).
@Suite struct AlphaSearchRangeTests {
    static let registry = PassRegistry().registering(Smooth.self)

    /// `Mul(x, γ) → MatMul(·, W)`, with calibration statistics and sampled rows of `h`.
    static func run(_ pipeline: String) throws -> [SmoothGroupReport] {
        let model = try IRParser().parseModel("""
            graph g(%x: f32[t,2]) -> (%q: f32[t,2]) {
              %gamma = const f32[2] [1, 1]
              %w = const f32[2,2] [0.5, -0.25, 0.125, 1]
              %h = Mul(%x, %gamma) @norm
              %q = MatMul(%h, %w) @q
              return %q
            }
            """)
        let rows: [[Float]] = [[16, 0.5], [-3, 1], [2, -0.75], [-16, 0.25]]
        let context = PassContext()
        var stats = CalibrationStatistics(fingerprint: ModelFingerprint.of(model.graph))
        stats["h"] = sqStatistics(rows: rows)
        context[CalibrationStatisticsKey.self] = stats
        var reservoir = RowReservoir(channels: 2, capacity: 8, seed: 1)
        rows.flatMap { $0 }.withUnsafeBufferPointer { reservoir.offer($0) }
        context[CalibrationRowsKey.self] = ["h": reservoir]
        try PassManager(pipeline: pipeline, registry: registry).run(on: model, context: context)
        return context[SmoothReportKey.self] ?? []
    }

    @Test func defaultGridIsUnchanged() {
        #expect(AlphaSearch.grid(AlphaSearch.defaultRange) == (0...12).map { 0.30 + 0.05 * Double($0) })
        #expect(AlphaSearch(rows: nil, policy: .O1, perChannelWeights: true).grid.count == 13)
        #expect(AlphaSearch.grid(0...0.2) == [0, 0.05, 0.1, 0.15000000000000002, 0.2])
        #expect(AlphaSearch.grid(0.1...0.12) == [0.1, 0.12])
        #expect(AlphaSearch.grid(0.7...0.7) == [0.7])
    }

    @Test func searchStaysInTheGivenRange() throws {
        let byDefault = try Self.run("smooth{alpha=auto,lm-head=true}")
        #expect(byDefault.count == 1 && (0.3...0.9).contains(byDefault[0].alpha), "\(byDefault.map(\.alpha))")
        // Below the default range: only reachable through alpha-min.
        let low = try Self.run("smooth{alpha=auto,alpha-min=0.1,alpha-max=0.1,lm-head=true}")
        #expect(low.map(\.alpha) == [0.1])
        let high = try Self.run("smooth{alpha=auto,alpha-min=0.95,alpha-max=1,policy=O3,weights=per-tensor,lm-head=true}")
        #expect(high.count == 1 && [0.95, 1].contains(high[0].alpha), "\(high.map(\.alpha))")
    }

    @Test func invalidRangeIsRejected() {
        #expect(throws: (any Error).self) { try Self.run("smooth{alpha=auto,alpha-min=0.7,alpha-max=0.2}") }
        #expect(throws: (any Error).self) { try Self.run("smooth{alpha=auto,alpha-min=-0.1}") }
        #expect(throws: (any Error).self) { try Self.run("smooth{alpha=auto,alpha-max=1.5}") }
        #expect(throws: (any Error).self) { try Self.run("smooth{alpha=auto,alpha-error=squared}") }
    }

    @Test func relativeErrorWeighsEveryRowAlike() throws {
        // Rows [16, 0.5] and [-16, 0.25] dominate the absolute error; relative counts the
        // small rows as much. Both stay on the grid.
        let relative = try Self.run("smooth{alpha=auto,alpha-error=relative,alpha-min=0,lm-head=true}")
        let absolute = try Self.run("smooth{alpha=auto,alpha-error=absolute,alpha-min=0,lm-head=true}")
        #expect(relative.count == 1 && AlphaSearch.grid(0...0.9).contains(relative[0].alpha))
        #expect(absolute.count == 1 && AlphaSearch.grid(0...0.9).contains(absolute[0].alpha))
    }
}

/// `calibrate{peak-rows=N}`: the rows of largest max |x| kept beside the uniform sample, and the
/// stratified weights `alpha=auto` sums with.
@Suite struct RowReservoirPeakTests {
    /// 200 rows of |x| ≤ 1 with two massive rows (|x| 3000, 2000) among them.
    static func reservoir(peaks: Int) -> RowReservoir {
        var reservoir = RowReservoir(channels: 2, capacity: 8, seed: 7, peakCapacity: peaks)
        var rng = SplitMix64(seed: 3)
        for r in 0..<200 {
            var row: [Float] = [rng.nextSigned(), rng.nextSigned()]
            if r == 17 { row[0] = 3000 }
            if r == 150 { row[1] = -2000 }
            row.withUnsafeBufferPointer { reservoir.offer($0) }
        }
        return reservoir
    }

    @Test func peakRowsHoldTheMassiveTokens() {
        let without = Self.reservoir(peaks: 0)
        let (values, weights) = without.weightedRows()
        #expect(values == without.values && weights == [Double](repeating: 1, count: 8))
        #expect(without.peakRowCount == 0)

        let with = Self.reservoir(peaks: 2)
        #expect(with.values == without.values, "the uniform sample does not depend on the peaks")
        #expect(Set(with.peakAbsMax) == [3000, 2000])
        let (rows, w) = with.weightedRows()
        #expect(rows.count == w.count * 2)
        #expect(rows.prefix(4).contains(3000) && rows.prefix(4).contains(-2000))
        #expect(w[0] == w[1] && w[0] < w.last!, "a peak row stands for itself, a uniform one for many")
        #expect(abs(w.reduce(0, +) - Double(with.rowCount)) < 1e-9)
        // The massive rows' share of the weight is theirs among all 200 rows, not the sample's.
        #expect(abs((w[0] + w[1]) / w.reduce(0, +) - 2.0 / 200) < 1e-12)
    }

    @Test func fewerRowsThanPeaksAreAllCountedOnce() {
        var reservoir = RowReservoir(channels: 2, capacity: 8, seed: 1, peakCapacity: 4)
        let rows: [Float] = [1, 2, -3, 4, 5, 0.5]
        rows.withUnsafeBufferPointer { reservoir.offer($0) }
        let (values, weights) = reservoir.weightedRows()
        #expect(values == rows && weights == [1, 1, 1])
    }
}

