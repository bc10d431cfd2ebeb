import Foundation
import Testing

/// Limits and run-time failures through the real `sqopt` binary: very deep graphs, huge
/// attribute lists, and errors that only show when the interpreter runs a model.
@Suite("Limits and run-time errors through the sqopt CLI")
struct RobustnessLimitTests {
    @Test("100,000 chained nodes: inspect, optimize and run without stack overflow")
    func deepGraph() throws {
        let path = try RobustnessSupport.fixture("deep_graph.onnx")
        let inspected = try RobustnessSupport.sqopt(["inspect", path], timeout: 120)
        #expect(inspected.exitCode == 0, "\(inspected)")
        #expect(inspected.stdout.contains("100000"), "inspect should count 100000 nodes: \(inspected.stdout.prefix(400))")

        let folder = try RobustnessSupport.temporaryDirectory("deep")
        let optimized = try RobustnessSupport.sqopt(["--passes", "dce", path, "-o", folder + "/out.onnx"], timeout: 180)
        #expect(optimized.exitCode == 0, "\(optimized)")

        let ran = try RobustnessSupport.sqopt(["run", path, "--data", try RobustnessSupport.fixture("run_data"),
                                               "--output-dir", folder + "/run"], timeout: 180)
        #expect(ran.exitCode == 0, "\(ran)")
    }

    @Test("the same chain stored in reverse order: sorted or refused, never a crash")
    func reversedChain() throws {
        let path = try RobustnessSupport.fixture("deep_graph_reversed.onnx")
        let result = try RobustnessSupport.sqopt(["inspect", path], timeout: 120)
        #expect(result.exitCode == 0 || result.exitCode == 1, "\(result)")
        if result.exitCode == 1 { expectRobustCleanFailure(result, mentions: [path, "relu"]) }
    }

    @Test("huge attribute lists load or are refused cleanly, in bounded time",
          arguments: ["huge_attribute_list.onnx", "huge_attribute_ints.onnx"])
    func hugeAttributes(_ name: String) throws {
        let path = try RobustnessSupport.fixture(name)
        let result = try RobustnessSupport.sqopt(["inspect", path], timeout: 60)
        #expect(result.exitCode == 0 || result.exitCode == 1, "\(result)")
        if result.exitCode == 1 { expectRobustCleanFailure(result, mentions: [path]) }
    }

    @Test("a string tensor where numbers are expected fails at run time, naming the node")
    func stringTensorAtRun() throws {
        let path = try RobustnessSupport.fixture("string_tensor_at_run.onnx")
        let out = try RobustnessSupport.temporaryDirectory("strings") + "/run"
        let result = try RobustnessSupport.sqopt(["run", path, "--data", try RobustnessSupport.fixture("run_data"), "--output-dir", out])
        expectRobustCleanFailure(result, mentions: ["add_strings", "string"])
    }

    @Test("an unknown op fails at run time, named with its domain")
    func unknownOpAtRun() throws {
        let path = try RobustnessSupport.fixture("unknown_op_at_run.onnx")
        let out = try RobustnessSupport.temporaryDirectory("unknown-op") + "/run"
        let result = try RobustnessSupport.sqopt(["run", path, "--data", try RobustnessSupport.fixture("run_data"), "--output-dir", out])
        expectRobustCleanFailure(result, mentions: ["Frobnicate", "com.example"])
    }
}

/// Nothing lost: outputs are written atomically, `-o` never overwrites the input, and an
/// interrupted write leaves the previous output as it was.
@Suite("Nothing lost: atomic output through the sqopt CLI", .serialized)
struct RobustnessOutputTests {
    @Test("-o equal to the input is refused (same path, ./ variant, symlink)")
    func outputIsInput() throws {
        let folder = try RobustnessSupport.temporaryDirectory("same")
        let model = folder + "/model.onnx"
        try FileManager.default.copyItem(atPath: try RobustnessSupport.fixture("valid.onnx"), toPath: model)
        try FileManager.default.createSymbolicLink(atPath: folder + "/alias.onnx", withDestinationPath: model)
        let before = RobustnessSupport.bytes(model)
        let variants: [(output: String, cwd: String?)] = [
            (model, nil), (folder + "/./model.onnx", nil), (folder + "/../" + (folder as NSString).lastPathComponent + "/model.onnx", nil),
            ("./model.onnx", folder), (folder + "/alias.onnx", nil),
        ]
        for variant in variants {
            // --force: even when overwriting is allowed, the input itself is never the output.
            let result = try RobustnessSupport.sqopt(["--passes", "dce", model, "-o", variant.output, "--force"], currentDirectory: variant.cwd)
            #expect(result.signal == nil, "\(variant.output): \(result)")
            #expect(result.exitCode == 1 || result.exitCode == 2, "-o \(variant.output) must be refused: \(result)")
            #expect(result.stderr.contains("input"), "the message should say the output is the input: \(result)")
            let unchanged = RobustnessSupport.bytes(model) == before
            #expect(unchanged, "the input changed after -o \(variant.output)")
        }
        let entries = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
        #expect(entries == ["alias.onnx", "model.onnx"], "stray files: \(entries)")
    }

    /// The synthetic large model (300 MB; `SQOPT_BIG_MB` overrides) for interrupting writes.
    static let bigModel: Result<String, RobustnessFailure> = {
        let megabytes = ProcessInfo.processInfo.environment["SQOPT_BIG_MB"] ?? "300"
        do { return .success(try RobustnessSupport.makeFixtures(["--big-mb", megabytes]) + "/big.onnx") } catch {
            return .failure(RobustnessFailure("\(error)"))
        }
    }()

    @Test("SIGKILL while writing leaves the previous output intact and no temp files")
    func killDuringWrite() throws {
        try interruptDuringWrite(signal: SIGKILL) { result in
            #expect(result.signal == SIGKILL, "\(result)")
        }
    }

    @Test("SIGINT while writing exits non-zero with a message; previous output intact")
    func interruptDuringWrite() throws {
        try interruptDuringWrite(signal: SIGINT) { result in
            #expect(result.signal == nil, "sqopt should handle SIGINT and exit with a message: \(result)")
            #expect(result.exitCode != nil && result.exitCode != 0, "\(result)")
            #expect(result.stderr.lowercased().contains("interrupt"), "no message: \(result)")
        }
    }

    /// Runs `sqopt --passes dce big.onnx -o out.onnx --force` over an existing out.onnx, sends
    /// `signal` as soon as sqopt has a non-empty file open in the output folder, then checks
    /// out.onnx is byte-identical to before and the folder holds nothing else.
    func interruptDuringWrite(signal: Int32, expectStatus: (RobustnessProcessResult) -> Void) throws {
        let big = try Self.bigModel.get()
        let folder = try RobustnessSupport.temporaryDirectory("interrupt")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let output = folder + "/out.onnx"
        try FileManager.default.copyItem(atPath: try RobustnessSupport.fixture("valid.onnx"), toPath: output)
        let previous = RobustnessSupport.bytes(output)

        // `env --default-signal=INT`: the test runner may start children with SIGINT ignored;
        // sqopt must see it as a terminal would deliver it.
        let process = try RobustnessSupport.launch("/usr/bin/env", ["--default-signal=INT", try RobustnessSupport.sqoptBinary(),
                                                                    "--passes", "dce", big, "-o", output, "--force"])
        var caught = false
        let deadline = Date().addingTimeInterval(120)
        while process.isRunning && Date() < deadline {
            if Self.isWritingInto(folder, pid: process.pid, except: output) {
                process.send(signal)
                caught = true
                break
            }
            usleep(500)
        }
        let result = process.wait(timeout: 60)
        try #require(caught, "never saw sqopt writing into \(folder) before it ended: \(result)")
        expectStatus(result)
        let after = RobustnessSupport.bytes(output)
        let unchanged = after.count == previous.count && after == previous  // a Bool: never print 300 MB
        #expect(unchanged, "the previous out.onnx was changed (now \(after.count) bytes, was \(previous.count))")
        let entries = try FileManager.default.contentsOfDirectory(atPath: folder)
        #expect(entries == ["out.onnx"], "stray files after the interrupted write: \(entries)")
    }

    /// Whether process `pid` holds a non-empty file open in `folder` (a named temp file or an
    /// unnamed O_TMPFILE, shown as "folder/#123 (deleted)"), other than `except`.
    static func isWritingInto(_ folder: String, pid: Int32, except: String) -> Bool {
        let fdFolder = "/proc/\(pid)/fd"
        let folder = URL(fileURLWithPath: folder).resolvingSymlinksInPath().path  // /proc shows real paths
        let except = URL(fileURLWithPath: except).resolvingSymlinksInPath().path
        guard let descriptors = try? FileManager.default.contentsOfDirectory(atPath: fdFolder) else { return false }
        for descriptor in descriptors {
            let link = fdFolder + "/" + descriptor
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: link),
                  target.hasPrefix(folder + "/"), target != except else { continue }
            var info = stat()
            if stat(link, &info) == 0, info.st_size > 1 << 20 { return true }
        }
        return false
    }
}
