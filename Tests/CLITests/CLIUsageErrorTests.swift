import Foundation
import Testing

/// Usage errors exit 2 and print `Error: …`, the usage line and `See '…'`; failures (missing
/// or malformed files) exit 1 with `error: …`. Error texts are checked, not only codes.
@Suite struct CLIUsageErrorTests {
    static let model = "models/tiny-opt/model.onnx"
    /// Where a wrongly accepted command would write (never into the repository).
    static let scratchOutput = FileManager.default.temporaryDirectory.appendingPathComponent("sqopt-cli-never-written.onnx").path

    struct Case: CustomStringConvertible, Sendable {
        let args: [String]
        let message: String      // a part of the `Error:` line
        var description: String { args.joined(separator: " ") }
    }

    static let usageCases: [Case] = [
        Case(args: ["inspct", model], message: "unknown command 'inspct'; did you mean 'inspect'?"),
        Case(args: ["calib-marge"], message: "did you mean 'calib-merge'?"),
        Case(args: ["inspect", "--jsn", model], message: "unknown option '--jsn'; did you mean '--json'?"),
        Case(args: ["--passes", "smooth,quantize", "--calb", "x", model], message: "did you mean '--calib'?"),
        Case(args: ["run", model, "--data"], message: "option '--data' needs a value"),
        Case(args: ["--passes", "smooth"], message: "no MODEL given"),
        Case(args: [model], message: "no --passes given"),
        Case(args: ["inspect"], message: "inspect takes exactly one MODEL"),
        Case(args: ["verify", model], message: "verify takes REFERENCE and CANDIDATE"),
        Case(args: ["--passes", "quantize", "--policy", "O4", model, "-o", scratchOutput], message: "invalid --policy 'O4'"),
        Case(args: ["--passes", "dce", "-o", model, model], message: "is the input model"),
        Case(args: ["bench", model, "--data", "models/tiny-opt", "--runs", "0"], message: "invalid value '0' for --runs"),
        Case(args: ["passes", "extra"], message: "'passes' takes no arguments"),
    ]

    @Test(arguments: CLIUsageErrorTests.usageCases)
    func usageErrorExitsTwo(_ c: Case) throws {
        let result = try CLI.run(c.args)
        #expect(result.status == 2, "\(result)")
        #expect(result.stdout.isEmpty, "\(result)")
        let lines = result.stderr.split(separator: "\n").map(String.init)
        #expect(lines.count == 3, "\(result)")
        #expect(lines.first?.hasPrefix("Error: ") == true, "\(result)")
        #expect(lines.first?.contains(c.message) == true, "expected '\(c.message)' in: \(result)")
        #expect(lines.dropFirst().first?.hasPrefix("Usage: sqopt ") == true, "\(result)")
        #expect(lines.last?.hasPrefix("See 'sqopt ") == true, "\(result)")
    }

    /// The usage line names the command that failed.
    @Test func usageLineBelongsToTheCommand() throws {
        let run = try CLI.run(["run", Self.model])
        #expect(run.stderr.contains("Usage: sqopt run MODEL"), "\(run)")
        #expect(run.stderr.contains("See 'sqopt help run'"), "\(run)")
    }

    /// `bench` errors show bench's usage line and a help page that exists.
    @Test func benchUsageErrorsNameBench() throws {
        let bench = try CLI.run(["bench", Self.model])
        #expect(bench.status == 2)
        #expect(bench.stderr.contains("Usage: sqopt bench MODEL --data DIR"), "\(bench)")
        #expect(bench.stderr.contains("See 'sqopt help bench'"), "\(bench)")
    }

    static let pipelineCases: [Case] = [
        Case(args: ["--passes", "smoth,quantize", model, "-o", scratchOutput], message: "unknown pass 'smoth' (did you mean 'smooth'?)"),
        Case(args: ["--passes", "quantize{polcy=O1}", model, "-o", scratchOutput], message: "did you mean 'policy'?"),
        Case(args: ["--passes", "smooth{alpha=abc}", model, "-o", scratchOutput], message: "invalid value 'abc' for option 'alpha'"),
        Case(args: ["--passes", "quantize{policy=O9}", model, "-o", scratchOutput], message: "invalid value 'O9'"),
        Case(args: ["--passes", "smooth{alpha=0.5", model, "-o", scratchOutput], message: "unbalanced '{'"),
    ]

    /// Bad pipelines are usage errors: exit 2, `Error:` naming the problem with a suggestion,
    /// and a pointer to `sqopt passes`.
    @Test(arguments: CLIUsageErrorTests.pipelineCases)
    func badPipelineExitsTwo(_ c: Case) throws {
        let result = try CLI.run(c.args)
        #expect(result.status == 2, "\(result)")
        #expect(result.stderr.hasPrefix("Error: "), "\(result)")
        #expect(result.stderr.contains(c.message), "expected '\(c.message)' in: \(result)")
        #expect(result.stderr.contains("See 'sqopt passes'"), "\(result)")
    }

    /// Like every other usage error, a bad pipeline also prints the usage line.
    @Test func badPipelinePrintsTheUsageLine() throws {
        let result = try CLI.run(["--passes", "smoth", Self.model])
        #expect(result.stderr.contains("Usage: sqopt --passes LIST"), "\(result)")
    }

    @Test func missingModelFileExitsOne() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for args in [["inspect", dir + "/absent.onnx"], ["--passes", "dce", dir + "/absent.onnx", "-o", dir + "/out.onnx"]] {
            let result = try CLI.run(args)
            #expect(result.status == 1, "\(result)")
            #expect(result.stderr.hasPrefix("error: "), "\(result)")
            #expect(result.stderr.contains("absent.onnx"), "the error names the file: \(result)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/out.onnx"))
        }
    }

    @Test func malformedModelExitsOne() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bad = dir + "/bad.onnx"
        try Data("this is not a protobuf model\n".utf8).write(to: URL(fileURLWithPath: bad))
        for args in [["inspect", bad], ["run", bad, "--data", "models/tiny-opt/test_data_set_0"]] {
            let result = try CLI.run(args)
            #expect(result.status == 1, "\(result)")
            #expect(result.stderr.hasPrefix("error: "), "\(result)")
            #expect(result.stderr.contains("bad.onnx"), "\(result)")
        }
        // A truncated real model is refused too.
        let model = try Data(contentsOf: URL(fileURLWithPath: CLI.path(Self.model)))
        let truncated = dir + "/truncated.onnx"
        try model.prefix(model.count / 2).write(to: URL(fileURLWithPath: truncated))
        let result = try CLI.run(["inspect", truncated])
        #expect(result.status == 1, "\(result)")
    }

    @Test func missingDataDirectoryExitsOne() throws {
        let result = try CLI.run(["run", Self.model, "--data", "/nonexistent-sqopt-data"])
        #expect(result.status == 1, "\(result)")
        #expect(result.stderr.contains("/nonexistent-sqopt-data"), "\(result)")
    }
}
