import Foundation
import SQIR
import Testing
@testable import SQPasses

@Suite struct CalibrationStatisticsTests {
    @Test func perChannelAndPerTensorFigures() {
        let s = sqStatistics(rows: [[1, -2, 0], [-3, 0.5, 0], [2, 1, 0]])
        #expect(s.channelMin == [-3, -2, 0])
        #expect(s.channelMax == [2, 1, 0])
        #expect(s.channelAbsMax == [3, 2, 0])
        #expect(s.min == -3 && s.max == 2 && s.absMax == 3)
        #expect(s.sampleCount == 1 && s.elementCount == 9)
        #expect(s.dims == [3, 3])
    }

    @Test func samplesOfDifferentLengthsStreamAndMergeExactly() {
        var rng = SplitMix64(seed: 7)
        let lengths = [5, 1, 9, 3]
        let samples = lengths.map { t in (0..<(t * 4)).map { _ in rng.nextSigned() * 10 } }
        var streamed = ActivationStatistics()
        for (t, data) in zip(lengths, samples) {
            data.withUnsafeBufferPointer { streamed.observe($0, shape: [1, t, 4], histogram: true) }
        }
        var first = ActivationStatistics(), second = ActivationStatistics()
        for (i, (t, data)) in zip(lengths, samples).enumerated() {
            data.withUnsafeBufferPointer {
                if i < 2 { first.observe($0, shape: [1, t, 4], histogram: true) } else { second.observe($0, shape: [1, t, 4], histogram: true) }
            }
        }
        first.merge(second)
        #expect(first == streamed)
        #expect(streamed.dims == [1, -1, 4])
        #expect(streamed.sampleCount == 4)
        let all = samples.flatMap { $0 }
        #expect(streamed.absMax == all.map(abs).max())
        for c in 0..<4 {
            let channel = stride(from: c, to: all.count, by: 4).map { abs(all[$0]) }
            #expect(streamed.channelAbsMax[c] == channel.max())
        }
    }

    @Test func varyingLastAxisDropsChannelsButKeepsTensorRange() {
        var s = ActivationStatistics()
        [Float](repeating: 1, count: 6).withUnsafeBufferPointer { s.observe($0, shape: [2, 3]) }
        [Float](repeating: -4, count: 8).withUnsafeBufferPointer { s.observe($0, shape: [2, 4]) }
        #expect(!s.hasChannels)
        #expect(s.absMax == 4)
        [Float](repeating: 2, count: 6).withUnsafeBufferPointer { s.observe($0, shape: [2, 3]) }
        #expect(!s.hasChannels)
    }

    @Test func nanIsIgnoredAndDeadChannelsReadZero() {
        var s = ActivationStatistics()
        [Float.nan, 1, Float.nan, -2].withUnsafeBufferPointer { s.observe($0, shape: [2, 2]) }
        #expect(s.channelAbsMax == [0, 2])
        #expect(s.absMax == 2)
    }

    @Test func dividingChannelsIsExact() throws {
        let s = sqStatistics(rows: [[1, -8], [-2, 4]])
        let d = try s.dividingChannels(by: [2, 4])
        #expect(d.channelMin == [-1, -2])
        #expect(d.channelMax == [0.5, 1])
        #expect(d.min == -2 && d.max == 1)
        #expect(throws: IRError.self) { try s.dividingChannels(by: [1, 0]) }
        #expect(throws: IRError.self) { try s.dividingChannels(by: [1]) }
    }

    @Test func histogramPercentileAndGrowth() {
        var h = AbsHistogram()
        let small = (1...1000).map { Float($0) / 1000 }  // 0.001 ... 1.0
        small.withUnsafeBufferPointer { h.add($0) }
        #expect(h.upperBound == 2)
        #expect(h.total == 1000)
        let p50 = h.percentile(50)
        #expect(abs(p50 - 0.5) < 2.0 / 2048 + 1e-6)
        [Float(100)].withUnsafeBufferPointer { h.add($0) }
        #expect(h.upperBound == 128)
        #expect(h.total == 1001)
        #expect(h.percentile(100) >= 100)
        // Merging histograms of different ranges equals adding all values to one.
        var a = AbsHistogram(), b = AbsHistogram(), both = AbsHistogram()
        small.withUnsafeBufferPointer { a.add($0); both.add($0) }
        [Float(37), -0.25].withUnsafeBufferPointer { b.add($0); both.add($0) }
        a.merge(b)
        #expect(a == both)
    }

    @Test func jsonRoundTripAndFingerprintCheck() throws {
        let b = SQTestGraph()
        let x = b.input("x", [.symbolic("t"), .known(2)])
        b.output(b.op("MatMul", "mm", [x, b.constant("w", shape: [2, 2], [1, 2, 3, 4])]))
        let fingerprint = ModelFingerprint.of(b.graph)
        var stats = CalibrationStatistics(fingerprint: fingerprint, percentile: 99.9)
        stats["x"] = sqStatistics(rows: [[1, .infinity], [-3, 2]])
        stats.samples = 1
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sqopt-stats-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("calib.json").path
        try stats.save(to: path)
        let loaded = try CalibrationStatistics.load(from: path, expectingFingerprint: fingerprint)
        #expect(loaded == stats)
        #expect(try stats.jsonData() == loaded.jsonData())

        let other = SQTestGraph()
        let y = other.input("y", [.known(2)])
        other.output(other.op("Relu", "r", [y]))
        #expect(ModelFingerprint.of(other.graph) != fingerprint)
        let error = #expect(throws: IRError.self) {
            try CalibrationStatistics.load(from: path, expectingFingerprint: ModelFingerprint.of(other.graph))
        }
        #expect(error?.description.contains("made for another model") == true)
        #expect(error?.file == path)

        try Data("{\"format\": \"x\"}".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: IRError.self) { try CalibrationStatistics.load(from: path) }
    }

    @Test func mergeRefusesOtherModels() throws {
        var a = CalibrationStatistics(fingerprint: "aa")
        let b = CalibrationStatistics(fingerprint: "bb")
        #expect(throws: IRError.self) { try a.merge(b) }
        var c = CalibrationStatistics(fingerprint: "aa")
        c["v"] = sqStatistics(rows: [[5]])
        c.samples = 3
        a["v"] = sqStatistics(rows: [[-7]])
        a.samples = 2
        try a.merge(c)
        #expect(a.samples == 5)
        #expect(a["v"]?.absMax == 7 && a["v"]?.max == 5)
    }
}
