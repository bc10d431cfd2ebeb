import Foundation
import Testing

/// Help texts compared verbatim with Tests/CLITests/Snapshots/*.txt.
/// After an intended change, `SQOPT_UPDATE_SNAPSHOTS=1 swift test --filter CLIHelpTests`
/// rewrites the snapshot files (the run still reports which ones changed); review the diff.
@Suite struct CLIHelpTests {
    static let snapshots: [(file: String, args: [String])] = [
        ("help.txt", ["--help"]),
        ("help-inspect.txt", ["help", "inspect"]),
        ("help-run.txt", ["help", "run"]),
        ("help-verify.txt", ["help", "verify"]),
        ("help-opt.txt", ["help", "opt"]),
        ("help-optimize.txt", ["help", "optimize"]),
        ("help-calib-merge.txt", ["help", "calib-merge"]),
        ("help-bench.txt", ["bench", "--help"]),
        ("passes.txt", ["passes"]),
    ]

    @Test(arguments: CLIHelpTests.snapshots.map(\.file))
    func helpMatchesSnapshot(_ file: String) throws {
        let args = try #require(Self.snapshots.first { $0.file == file }).args
        let result = try CLI.run(args)
        #expect(result.status == 0, "\(result)")
        #expect(result.stderr.isEmpty, "\(result)")
        let snapshotPath = CLI.path("Tests/CLITests/Snapshots/\(file)")
        if ProcessInfo.processInfo.environment["SQOPT_UPDATE_SNAPSHOTS"] == "1" {
            let old = try? String(contentsOfFile: snapshotPath, encoding: .utf8)
            try result.stdout.write(toFile: snapshotPath, atomically: true, encoding: .utf8)
            #expect(old == result.stdout, "snapshot \(file) rewritten (SQOPT_UPDATE_SNAPSHOTS=1): review the diff")
            return
        }
        let expected = try String(contentsOfFile: snapshotPath, encoding: .utf8)
        #expect(result.stdout == expected, """
            `sqopt \(args.joined(separator: " "))` differs from Snapshots/\(file) \
            (SQOPT_UPDATE_SNAPSHOTS=1 rewrites it):
            \(result.stdout)
            """)
    }

    @Test func rootHelpListsEveryCommandWithAHelpPage() throws {
        let root = try CLI.run(["--help"]).stdout
        for command in ["inspect", "run", "verify", "opt", "passes", "calib-merge", "bench", "help"] {
            #expect(root.contains("\n  \(command) "), "root help lacks '\(command)'")
        }
        for command in ["inspect", "run", "verify", "opt", "optimize", "calib-merge", "bench"] {
            let result = try CLI.run(["help", command])
            #expect(result.status == 0, "sqopt help \(command): \(result)")
            #expect(result.stdout.hasPrefix("USAGE: sqopt "), "sqopt help \(command): \(result)")
        }
    }

    @Test func helpShowsExamplesForTheCommonJobs() throws {
        let root = try CLI.run(["--help"]).stdout
        #expect(root.contains("sqopt --passes smooth,quantize model.onnx"))
        #expect(root.contains("sqopt run "))
        #expect(root.contains("sqopt verify "))
        #expect(root.contains("sqopt passes"))
        #expect(root.contains("custom pass"))
    }

    @Test func versionPrintsTheToolAndVersion() throws {
        let result = try CLI.run(["--version"])
        #expect(result.status == 0)
        #expect(result.stdout.hasPrefix("sqopt "), "\(result)")
    }

    @Test func passesListsTheSmoothQuantPipeline() throws {
        let result = try CLI.run(["passes"])
        #expect(result.status == 0)
        for name in ["calibrate", "smooth", "quantize", "canonicalize-norms", "dce", "fold-constants"] {
            #expect(result.stdout.contains("\n\(name) "), "`sqopt passes` lacks \(name)")
        }
        #expect(result.stdout.contains("<O1|O2|O3>"))
    }
}
