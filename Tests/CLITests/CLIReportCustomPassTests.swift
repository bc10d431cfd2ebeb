import Foundation
import Testing

/// `--report` (the paper's Figure 4 view of smoothing) and the custom-pass example tool
/// `sqopt-custom`, which registers a pass from another target and runs the same driver.
@Suite struct CLIReportCustomPassTests {
    /// Largest channel max over the median channel max: the outlier ratio of an activation.
    static func outlierRatio(_ channels: [Double]) -> Double {
        let sorted = channels.sorted()
        guard let top = sorted.last, !sorted.isEmpty else { return 0 }
        let median = sorted[sorted.count / 2]
        return median > 0 ? top / median : .infinity
    }

    @Test func reportShowsOutlierChannelsFlattened() throws {
        let dir = try CLI.copyModel("tiny-opt")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = dir + "/model.onnx"
        // lm-head=false: the planted outliers are in the layers' norms, not the final one.
        let html = try CLI.run(["--passes", "calibrate,smooth{lm-head=false}", "--calib", dir, model, "-o", dir + "/a.onnx",
                                "--report", dir + "/report.html", "--quiet"])
        #expect(html.status == 0, "\(html)")
        let json = try CLI.run(["--passes", "calibrate,smooth{lm-head=false}", "--calib", dir, model, "-o", dir + "/b.onnx",
                                "--report", dir + "/report.json", "--quiet"])
        #expect(json.status == 0, "\(json)")

        let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/report.json"))
        let groups = try #require(try JSONSerialization.jsonObject(with: data) as? [[String: Any]])
        #expect(groups.count == 4, "tiny-opt has 4 norm -> linear groups (q/k/v and fc1 per layer)")
        for group in groups {
            let before = try #require(group["channelAbsMaxBefore"] as? [Double])
            let after = try #require(group["channelAbsMaxAfter"] as? [Double])
            #expect(before.count == 64 && after.count == 64)
            let (rb, ra) = (Self.outlierRatio(before), Self.outlierRatio(after))
            #expect(rb > 20, "calibration should see the planted outliers (ratio \(rb))")
            #expect(ra < rb / 4, "smoothing should flatten the outlier channels: ratio \(rb) -> \(ra)")
            #expect(group["foldedInto"] as? String != nil, "pre-LN groups fold into the LayerNorm")
        }
        let page = try String(contentsOfFile: dir + "/report.html", encoding: .utf8)
        #expect(page.components(separatedBy: "<svg").count - 1 == groups.count)
        #expect(page.contains("4 groups smoothed: 4 folded"))
    }

    @Test func customPassToolRunsItsPassLikeABuiltIn() throws {
        let custom = URL(fileURLWithPath: try CLI.binary()).deletingLastPathComponent().appendingPathComponent("sqopt-custom").path
        #expect(FileManager.default.isExecutableFile(atPath: custom), "build sqopt-custom with `swift build --build-tests`")
        let listing = try CLI.execute(custom, ["passes"])
        #expect(listing.status == 0)
        #expect(listing.stdout.contains("strip-multiply-by-one"), "\(listing)")
        #expect(listing.stdout.contains("quantize"), "the built-ins are registered too")

        let dir = try CLI.copyModel("tiny-llama", includeData: false)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let run = try CLI.execute(custom, ["--passes", "strip-multiply-by-one{also-divide=true},dce",
                                           dir + "/model.onnx", "-o", dir + "/out.onnx"])
        #expect(run.status == 0, "\(run)")
        #expect(run.stdout.contains("strip-multiply-by-one"), "\(run)")
        #expect(FileManager.default.fileExists(atPath: dir + "/out.onnx"))
        let typo = try CLI.execute(custom, ["--passes", "strip-multiply-by-on", dir + "/model.onnx"])
        #expect(typo.status == 2)
        #expect(typo.stderr.contains("did you mean 'strip-multiply-by-one'"), "\(typo)")
    }
}
