import Foundation
import SQDriver
import SQIR
import SQONNX
import Testing
@testable import SQPasses

/// Calibration with sqopt's interpreter on the tiny models (npy samples of different
/// lengths), checked against the numpy reference and onnxruntime's quantize_static.
@Suite(.serialized)
struct CalibrationTests {
    static func calibrate(_ name: String, percentile: Double? = nil) throws -> (Model, CalibrationStatistics) {
        let model = try SmoothQuantFixtures.load(SmoothQuantFixtures.model(name))
        let samples = try CalibrationDirectory(path: SmoothQuantFixtures.modelDir(name) + "/samples",
                                               graphInputs: model.graph.inputs)
        #expect(samples.layout == .numpy && samples.count == 4)
        let stats = try Calibrator(percentile: percentile, maxSamples: nil, rowsPerValue: 0).calibrate(
            graph: model.graph, samples: samples, run: try InterpreterRunner.make(model))
        return (model, stats)
    }

    @Test(arguments: ["tiny-opt", "tiny-llama", "tiny-bert"])
    func observesEveryLinearAndAttentionInput(_ name: String) throws {
        let (model, stats) = try Self.calibrate(name)
        let observed = Calibrator.observedValues(in: model.graph)
        #expect(Set(stats.values.keys) == Set(observed))
        #expect(stats.samples == 4)
        for layer in LinearLayer.all(in: model.graph) {
            let s = try #require(stats[layer.activation.name])
            #expect(s.hasChannels && s.channelMax.count == layer.inputChannels)
            #expect(s.sampleCount == 4)
            #expect(s.dims.last == layer.inputChannels && s.dims.contains(-1))  // lengths differ
        }
        #expect(stats.fingerprint == ModelFingerprint.of(model.graph))
    }

    @Test(.enabled(if: SmoothQuantFixtures.hasPython, "needs .venv"), arguments: ["tiny-opt", "tiny-llama", "tiny-bert"])
    func matchesTheNumpyReference(_ name: String) throws {
        let (model, stats) = try Self.calibrate(name)
        let reference = try SmoothQuantFixtures.referenceStatistics(
            model: SmoothQuantFixtures.model(name), calib: SmoothQuantFixtures.modelDir(name), graph: model.graph)
        #expect(Set(reference.values.keys) == Set(stats.values.keys))
        for (value, ref) in reference.values {
            let mine = try #require(stats[value])
            #expect(abs(mine.absMax - ref.absMax) <= 1e-5 * ref.absMax, "\(value)")
            #expect(mine.dims == ref.dims, "\(value)")
            #expect(mine.hasChannels == ref.hasChannels, "\(value)")
            for (a, b) in zip(mine.channelAbsMax, ref.channelAbsMax) {
                #expect(abs(a - b) <= 1e-5 * max(b, 1e-3), "\(value)")
            }
        }
    }

    /// sqopt's per-tensor absmax / 127 is the activation scale onnxruntime's quantize_static
    /// computes (QDQ, MinMax, ActivationSymmetric) for every MatMul input it quantizes.
    @Test(.enabled(if: SmoothQuantFixtures.hasPython, "needs .venv"), arguments: ["tiny-opt", "tiny-llama", "tiny-bert"])
    func perTensorScalesEqualOnnxruntimeQuantizeStatic(_ name: String) throws {
        let (_, stats) = try Self.calibrate(name)
        let dir = try SmoothQuantFixtures.temporaryDirectory()
        defer { SmoothQuantFixtures.cleanUp(dir) }
        let json = dir + "/scales.json"
        let (status, output) = try SmoothQuantFixtures.runTool("fakequant_reference.py",
            ["ort-scales", SmoothQuantFixtures.model(name), "--calib", SmoothQuantFixtures.modelDir(name), "--json", json])
        try #require(status == 0, "\(output)")
        let scales = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Double])
        var compared = 0
        var worst = 0.0
        for (value, ortScale) in scales {
            guard let mine = stats[value] else { continue }
            let scale = Double(mine.absMax) / 127
            let relative = abs(scale - ortScale) / ortScale
            worst = max(worst, relative)
            #expect(relative <= 1e-6, "\(value): sqopt \(scale), onnxruntime \(ortScale)")
            compared += 1
        }
        #expect(compared >= 12, "compared \(compared) scales")
        print("\(name): \(compared) activation scales, worst relative difference \(worst)")
    }

    @Test func percentileClipsStaticRange() throws {
        let (_, full) = try Self.calibrate("tiny-opt")
        let (_, clipped) = try Self.calibrate("tiny-opt", percentile: 99.0)
        var smaller = 0
        for (name, s) in clipped.values {
            let clip = try #require(clipped.staticAbsMax(name))
            #expect(clip <= s.absMax)
            #expect(full.staticAbsMax(name) == s.absMax)
            if clip < s.absMax { smaller += 1 }
        }
        #expect(smaller > 0)
    }

    @Test func badSamplesGiveClearErrors() throws {
        let model = try SmoothQuantFixtures.load(SmoothQuantFixtures.model("tiny-bert"))
        let dir = try SmoothQuantFixtures.temporaryDirectory()
        defer { SmoothQuantFixtures.cleanUp(dir) }
        let fm = FileManager.default
        // Empty folder.
        let empty = dir + "/empty"
        try fm.createDirectory(atPath: empty, withIntermediateDirectories: true)
        let noSamples = #expect(throws: IRError.self) { try CalibrationDirectory(path: empty, graphInputs: model.graph.inputs) }
        #expect(noSamples?.description.contains("no calibration samples") == true)
        #expect(throws: IRError.self) { try CalibrationDirectory(path: dir + "/missing", graphInputs: model.graph.inputs) }

        func sample(_ files: [String: (String, [Int], [UInt8])]) throws -> CalibrationDirectory {
            let s = dir + "/s\(UUID().uuidString)/0"
            try fm.createDirectory(atPath: s, withIntermediateDirectories: true)
            for (name, (descr, shape, data)) in files {
                try Data(sqNpyBytes(descr: descr, shape: shape, data: data)).write(to: URL(fileURLWithPath: s + "/\(name).npy"))
            }
            return try CalibrationDirectory(path: (s as NSString).deletingLastPathComponent, graphInputs: model.graph.inputs)
        }
        let ids = [UInt8](repeating: 0, count: 8 * 3)
        let run = try InterpreterRunner.make(model)
        let cases: [([String: (String, [Int], [UInt8])], String)] = [
            (["input_ids": ("<i8", [1, 3], ids), "attention_mask": ("<i8", [1, 3], ids), "oops": ("<i8", [1, 3], ids)], "'oops' is not an input"),
            (["input_ids": ("<i8", [1, 3], ids)], "'attention_mask' is missing"),
            (["input_ids": ("<f4", [1, 6], ids), "attention_mask": ("<i8", [1, 3], ids)], "dtype f32"),
            (["input_ids": ("<i8", [3], ids), "attention_mask": ("<i8", [1, 3], ids)], "rank 1"),
        ]
        for (files, message) in cases {
            let source = try sample(files)
            let error = #expect(throws: IRError.self) {
                _ = try Calibrator(percentile: nil, maxSamples: nil, rowsPerValue: 0).calibrate(graph: model.graph, samples: source, run: run)
            }
            #expect(error?.description.contains(message) == true, "\(error?.description ?? "no error") should mention \(message)")
            #expect(error?.file?.hasSuffix("/0") == true)
        }
    }

    @Test func npyReader() throws {
        let t = try NpyReader.decode(sqNpyBytes(descr: "<f4", shape: [2, 1], data: [0, 0, 128, 63, 0, 0, 0, 64]))
        #expect(t.dtype == .float && t.shape == [2, 1] && t.elements(as: Float.self) == [1, 2])
        #expect(throws: IRError.self) { try NpyReader.decode([1, 2, 3]) }
        #expect(throws: IRError.self) { try NpyReader.decode(sqNpyBytes(descr: ">f4", shape: [1], data: [0, 0, 0, 0])) }
        #expect(throws: IRError.self) { try NpyReader.decode(sqNpyBytes(descr: "<f4", shape: [2], data: [0, 0, 0, 0])) }
        let scalar = try NpyReader.decode(sqNpyBytes(descr: "<i8", shape: [], data: [7, 0, 0, 0, 0, 0, 0, 0]))
        #expect(scalar.shape == [] && scalar.int64Values() == [7])
    }
}

/// A version-1 `.npy` file.
func sqNpyBytes(descr: String, shape: [Int], data: [UInt8]) -> [UInt8] {
    let shapeText = shape.isEmpty ? "()" : shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
    var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }"
    while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
    header += "\n"
    let length = header.utf8.count
    return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(length & 0xFF), UInt8(length >> 8)] + Array(header.utf8) + data
}
