import Foundation
import Testing

/// Statistics merging (`calib-merge`), `verify` and `bench` through the CLI.
@Suite struct CLICalibrationVerifyTests {
    /// Copies test_data_set_K (K in `sets`) of models/NAME into a fresh folder.
    static func shard(_ name: String, _ sets: [Int], into dir: String) throws -> String {
        let shard = dir + "/shard-" + sets.map(String.init).joined()
        try FileManager.default.createDirectory(atPath: shard, withIntermediateDirectories: true)
        for k in sets {
            try FileManager.default.copyItem(atPath: CLI.path("models/\(name)/test_data_set_\(k)"),
                                             toPath: shard + "/test_data_set_\(k)")
        }
        return shard
    }

    /// Compares two statistics files: every value's maxima and minima (per channel and per
    /// tensor) must be equal exactly; prints the number of values compared.
    static let compareStatistics = """
        import json, sys
        a, b = (json.load(open(p)) for p in sys.argv[1:3])
        assert a["fingerprint"] == b["fingerprint"], "fingerprints differ"
        assert a["samples"] == b["samples"], (a["samples"], b["samples"])
        assert sorted(a["values"]) == sorted(b["values"]), "different values"
        for name, x in a["values"].items():
            y = b["values"][name]
            for key in ("channelMax", "channelMin", "max", "min"):
                assert key in x, (name, key)
                assert x[key] == y[key], f"{name}.{key} differs"
        print(json.dumps({"values": len(a["values"])}))
        """

    @Test(arguments: ["tiny-llama", "tiny-bert"])
    func mergingHalvesEqualsCalibratingOnTheWhole(_ name: String) throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = CLI.path("models/\(name)/model.onnx")
        func calibrate(_ data: String, _ file: String) throws {
            let result = try CLI.run(["--passes", "calibrate", "--calib", data, model, "--save-calib", file,
                                      "-o", dir + "/unused-\(UUID().uuidString).onnx", "--quiet"])
            #expect(result.status == 0, "\(result)")
        }
        try calibrate(try Self.shard(name, [0, 1], into: dir), dir + "/a.json")
        try calibrate(try Self.shard(name, [2, 3], into: dir), dir + "/b.json")
        try calibrate(CLI.path("models/\(name)"), dir + "/all.json")

        let merge = try CLI.run(["calib-merge", dir + "/a.json", dir + "/b.json", "-o", dir + "/c.json"])
        #expect(merge.status == 0, "\(merge)")
        #expect(merge.stdout.contains("merged 2 statistics files"), "\(merge)")
        let check = try CLI.json(try CLI.runPython(Self.compareStatistics, [dir + "/c.json", dir + "/all.json"]))
        #expect((check["values"] as? Int ?? 0) > 0, "\(check)")

        // The merged file drives quantization like the whole-data one.
        let fromMerged = try CLI.run(["--passes", "smooth,quantize", model, "--load-calib", dir + "/c.json",
                                      "-o", dir + "/merged.onnx", "--quiet"])
        #expect(fromMerged.status == 0, "\(fromMerged)")

        let again = try CLI.run(["calib-merge", dir + "/a.json", dir + "/b.json", "-o", dir + "/c.json"])
        #expect(again.status == 1, "existing output without --force: \(again)")
    }

    @Test func mergingStatisticsOfDifferentModelsFails() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for name in ["tiny-opt", "tiny-llama"] {
            let result = try CLI.run(["--passes", "calibrate", CLI.path("models/\(name)/model.onnx"),
                                      "--save-calib", dir + "/\(name).json", "-o", dir + "/\(name).onnx", "--quiet"])
            #expect(result.status == 0, "\(result)")
        }
        let merge = try CLI.run(["calib-merge", dir + "/tiny-opt.json", dir + "/tiny-llama.json", "-o", dir + "/c.json"])
        #expect(merge.status == 1, "\(merge)")
        #expect(merge.stderr.contains("fingerprint"), "\(merge)")
    }

    @Test func verifyPrintsTheMetrics() throws {
        let dir = try CLI.copyModel("tiny-opt")
        defer { try? FileManager.default.removeItem(atPath: (dir as NSString).deletingLastPathComponent) }
        let quantize = try CLI.run(["--passes", "smooth,quantize", dir + "/model.onnx", "--quiet"])
        #expect(quantize.status == 0, "\(quantize)")
        let reference = dir + "/model.onnx", candidate = dir + "/model.sq-w8a8.onnx"

        let text = try CLI.run(["verify", reference, candidate, "--data", dir])
        #expect(text.status == 0, "\(text)")
        #expect(text.stdout.contains("on 4 sample(s)"), "\(text)")
        #expect(text.stdout.contains("logits"), "\(text)")

        let json = try CLI.run(["verify", reference, candidate, "--data", dir, "--json", "--layerwise"])
        #expect(json.status == 0, "\(json)")
        let report = try CLI.json(json.stdout)
        #expect(report["samples"] as? Int == 4)
        let logits = try #require((report["outputs"] as? [[String: Any]])?.first)
        #expect(logits["name"] as? String == "logits")
        for key in ["cosine", "relativeL2", "maxAbsError", "snrDB", "top1Agreement", "klDivergence"] {
            #expect(logits[key] is Double, "verify --json lacks \(key): \(logits)")
        }
        let cosine = logits["cosine"] as? Double ?? 0
        #expect(cosine > 0.95 && cosine <= 1.0 + 1e-9, "\(logits)")
        #expect((logits["top1Agreement"] as? Double ?? 0) > 0.5, "\(logits)")
        #expect(!((report["layers"] as? [Any]) ?? []).isEmpty, "--layerwise compares the quantized MatMuls")

        // A model against itself: identical outputs.
        let same = try CLI.json(try CLI.run(["verify", reference, reference, "--data", dir + "/test_data_set_0", "--json"]).stdout)
        let row = try #require((same["outputs"] as? [[String: Any]])?.first)
        #expect(row["maxAbsError"] as? Double == 0, "\(row)")
        #expect(abs((row["cosine"] as? Double ?? 0) - 1) < 1e-12, "\(row)")
    }

    @Test func benchReportsTimings() throws {
        let model = CLI.path("models/tiny-opt/model.onnx"), data = CLI.path("models/tiny-opt/test_data_set_0")
        let result = try CLI.run(["bench", model, "--data", data, "--runs", "3", "--warmup", "1", "--threads", "1", "--json"])
        #expect(result.status == 0, "\(result)")
        let report = try CLI.json(result.stdout)
        #expect(report["runs"] as? Int == 3)
        #expect(report["threads"] as? Int == 1)
        #expect(report["samples"] as? Int == 1)
        let times = report["runMilliseconds"] as? [Double] ?? []
        #expect(times.count == 3)
        let median = report["medianMilliseconds"] as? Double ?? -1
        let minimum = report["minMilliseconds"] as? Double ?? -1
        #expect(minimum > 0 && minimum <= median && median <= (times.max() ?? 0), "\(report)")

        let text = try CLI.run(["bench", model, "--data", data, "--runs", "2"])
        #expect(text.status == 0, "\(text)")
        #expect(text.stdout.contains("median "), "\(text)")
        #expect(text.stdout.contains(" min "), "\(text)")
    }
}
