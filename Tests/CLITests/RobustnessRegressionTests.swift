import Foundation
import Testing

/// Replays every input in Tests/Regressions (crashes found by fuzzing, adversarial inputs
/// found by hand) through the fuzz harness (`sqopt-fuzz FILE...`: decode -> verify -> print
/// -> lower, the exact path libFuzzer drives) and through `sqopt inspect`. Each must end in
/// success or a clean error; a crash is a regression.
@Suite("Regression inputs replayed")
struct RobustnessRegressionTests {
    static let folder = RobustnessSupport.repositoryRoot.appendingPathComponent("Tests/Regressions").path

    static func inputs() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder)
            .filter { !$0.hasPrefix(".") && !$0.hasSuffix(".md") }
            .sorted()
            .map { folder + "/" + $0 }
    }

    /// One process per input, so every crashing input is named (not only the first).
    @Test("the fuzz harness replays every regression input without a crash")
    func replayThroughHarness() throws {
        let inputs = try Self.inputs()
        try #require(inputs.count >= 10, "Tests/Regressions has only \(inputs.count) inputs")
        let sqopt = try RobustnessSupport.sqoptBinary()
        let harness = (sqopt as NSString).deletingLastPathComponent + "/sqopt-fuzz"
        try #require(FileManager.default.isExecutableFile(atPath: harness),
                     "\(harness) missing: build it with `swift build` (tools/test.sh builds every product)")
        for input in inputs {
            let result = try RobustnessSupport.run(harness, [input], timeout: 60)
            let name = (input as NSString).lastPathComponent
            #expect(result.signal == nil && result.exitCode == 0,
                    "\(name) crashed the harness (see Tests/Regressions/README.md): \(result.status); \(Self.crashSummary(result))")
            #expect(result.stdout.contains("replayed 1 input(s), no crash"), "\(name): \(result.stdout.suffix(500))")
        }
    }

    /// The Swift runtime's or a sanitizer's one-line reason, when there is one.
    static func crashSummary(_ result: RobustnessProcessResult) -> String {
        let lines = result.stderr.split(separator: "\n")
        let reason = lines.first { $0.contains("runtime failure") || $0.contains("Fatal error") || $0.contains("SUMMARY") }
        return reason.map(String.init) ?? String(result.stderr.prefix(300))
    }

    @Test("sqopt inspect ends every regression input in success or a one-line error")
    func replayThroughCLI() throws {
        for input in try Self.inputs() {
            let result = try RobustnessSupport.sqopt(["inspect", input], timeout: 60)
            #expect(result.signal == nil && !result.timedOut, "\(input): \(result)")
            #expect(result.exitCode == 0 || result.exitCode == 1, "\(input): \(result)")
            if result.exitCode == 1 { expectRobustCleanFailure(result, mentions: [input]) }
        }
    }
}
