import Foundation
import Testing

/// `sqopt bench --profile`: the shape of the per-op tables (never their timings).
@Suite struct CLIBenchProfileTests {
    @Test func profileJSONGroupsEveryStepByKindAndNode() throws {
        let model = CLI.path("models/tiny-llama/model.onnx"), data = CLI.path("models/tiny-llama/test_data_set_0")
        let result = try CLI.run(["bench", model, "--data", data, "--runs", "2", "--warmup", "0", "--threads", "1",
                                  "--profile", "--json"])
        #expect(result.status == 0, "\(result)")
        let report = try CLI.json(result.stdout)
        let profile = try #require(report["profile"] as? [String: Any], "\(report)")
        let byKind = try #require(profile["byKind"] as? [[String: Any]])
        let byNode = try #require(profile["byNode"] as? [[String: Any]])
        #expect(!byKind.isEmpty && byNode.count >= byKind.count)
        for rows in [byKind, byNode] {
            for row in rows {
                #expect(row["name"] is String && row["steps"] is Int && row["milliseconds"] is Double && row["percent"] is Double, "\(row)")
            }
            // Sorted slowest first; percentages add up to 100; both tables count the same steps.
            let ms = rows.compactMap { $0["milliseconds"] as? Double }
            #expect(ms == ms.sorted(by: >))
            let percent = rows.compactMap { $0["percent"] as? Double }.reduce(0, +)
            #expect(abs(percent - 100) < 1e-6, "\(percent)")
        }
        let steps = { (rows: [[String: Any]]) in rows.compactMap { $0["steps"] as? Int }.reduce(0, +) }
        #expect(steps(byKind) == steps(byNode))
        let kinds = Set(byKind.compactMap { $0["name"] as? String })
        #expect(kinds.contains("MatMul"), "\(kinds)")
        // Node groups replace digit runs by '#' and name their kind.
        for row in byNode {
            let name = row["name"] as? String ?? ""
            let group = name.range(of: " [", options: .backwards).map { String(name[..<$0.lowerBound]) } ?? name
            let hasDigit = group.contains { $0.isNumber }
            #expect(!hasDigit, "\(name)")
            #expect(name.hasSuffix("]") && group != name, "\(name)")
        }
    }

    @Test func profileOfAnInt8ModelNamesTheInt8Kernels() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sqopt-bench-profile-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = CLI.path("models/tiny-llama/model.onnx"), data = CLI.path("models/tiny-llama/test_data_set_0")
        let out = dir + "/int8.onnx"
        let made = try CLI.run(["--passes", "smooth,quantize", model, "-o", out])
        #expect(made.status == 0, "\(made)")
        let text = try CLI.run(["bench", out, "--data", data, "--runs", "1", "--warmup", "0", "--profile"])
        #expect(text.status == 0, "\(text)")
        let lines = text.stdout.split(separator: "\n").map(String.init)
        let kindHeader = try #require(lines.firstIndex { $0.hasPrefix("  op kind") }, "\(text)")
        let nodeHeader = try #require(lines.firstIndex { $0.hasPrefix("  node (digits as #)") }, "\(text)")
        #expect(kindHeader < nodeHeader)
        #expect(lines[kindHeader].hasSuffix("steps          ms       %"))
        // Every table row: a name, then steps, milliseconds and percent columns.
        for line in lines[(kindHeader + 1)..<nodeHeader] {
            let fields = line.split(separator: " ")
            #expect(fields.count >= 4, "\(line)")
            #expect(Int(fields[fields.count - 3]) != nil && Double(fields[fields.count - 2]) != nil
                    && Double(fields[fields.count - 1]) != nil, "\(line)")
        }
        #expect(lines[(kindHeader + 1)..<nodeHeader].contains { $0.contains("MatMul (int8)") || $0.contains("MatMul+Add (int8)") },
                "\(text.stdout)")
    }
}
