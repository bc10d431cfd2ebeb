import Foundation
import Testing

/// Runs the built `sqopt` executable as a subprocess and builds the adversarial models the
/// robustness and bad-input tests feed it.
enum RobustnessSupport {
    /// The repository root (this file is Tests/CLITests/RobustnessSupport.swift).
    static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `sqopt` next to the test bundle (same build folder, whatever the configuration or
    /// sanitizer), else `.build/debug/sqopt`; `$SQOPT_BIN` overrides both.
    static func sqoptBinary() throws -> String {
        if let override = ProcessInfo.processInfo.environment["SQOPT_BIN"] { return override }
        var candidates: [URL] = []
        if let executable = Bundle.main.executableURL {
            candidates.append(executable.deletingLastPathComponent().appendingPathComponent("sqopt"))
        }
        let argumentZero = URL(fileURLWithPath: CommandLine.arguments.first ?? "")
        candidates.append(argumentZero.deletingLastPathComponent().appendingPathComponent("sqopt"))
        candidates.append(repositoryRoot.appendingPathComponent(".build/debug/sqopt"))
        for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate.path) {
            return candidate.path
        }
        throw RobustnessFailure("sqopt executable not found (looked at \(candidates.map(\.path))); run `swift build` first")
    }

    /// `$SQOPT_PYTHON`, else the repository's .venv (tools/setup.sh makes it).
    static func python() throws -> String {
        let path = ProcessInfo.processInfo.environment["SQOPT_PYTHON"]
            ?? repositoryRoot.appendingPathComponent(".venv/bin/python").path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw RobustnessFailure("no Python at \(path): run tools/setup.sh (it makes .venv with onnx and numpy)")
        }
        return path
    }

    /// This process's scratch folder, `build/robustness/<pid>` (git-ignored). Folders left by
    /// earlier test processes that are no longer running are removed first, so the large
    /// fixtures (a 300 MB model, a 23 MB attribute list) do not pile up.
    static let scratchRoot: String = {
        let root = repositoryRoot.appendingPathComponent("build/robustness").path
        let fileManager = FileManager.default
        for name in (try? fileManager.contentsOfDirectory(atPath: root)) ?? [] {
            if let pid = Int32(name), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH {
                try? fileManager.removeItem(atPath: root + "/" + name)
            }
        }
        return root + "/\(getpid())"
    }()

    /// A fresh scratch folder.
    static func temporaryDirectory(_ label: String) throws -> String {
        let path = scratchRoot + "/\(label)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Runs the fixture generator (Fixtures/BadModelScript.swift) into a fresh folder.
    static func makeFixtures(_ extraArguments: [String] = []) throws -> String {
        let folder = try temporaryDirectory("fixtures")
        let script = folder + "/make_bad_models.py"
        try Data(BadModelScript.source.utf8).write(to: URL(fileURLWithPath: script))
        let result = try run(try python(), [script, folder] + extraArguments, timeout: 300)
        guard result.exitCode == 0 else {
            throw RobustnessFailure("make_bad_models.py failed (\(result.status)): \(result.stderr)")
        }
        return folder
    }

    /// The standard fixtures, built once per test process.
    static let fixtures: Result<String, RobustnessFailure> = {
        do { return .success(try makeFixtures()) } catch let error as RobustnessFailure {
            return .failure(error)
        } catch {
            return .failure(RobustnessFailure("\(error)"))
        }
    }()

    static func fixture(_ name: String) throws -> String {
        try fixtures.get() + "/" + name
    }

    /// Runs `executable` with `arguments`, killing it (SIGKILL) after `timeout` seconds.
    static func run(_ executable: String, _ arguments: [String], timeout: Double = 120,
                    currentDirectory: String? = nil) throws -> RobustnessProcessResult {
        let process = try launch(executable, arguments, currentDirectory: currentDirectory)
        return process.wait(timeout: timeout)
    }

    /// Runs sqopt.
    static func sqopt(_ arguments: [String], timeout: Double = 120, currentDirectory: String? = nil) throws -> RobustnessProcessResult {
        try run(try sqoptBinary(), arguments, timeout: timeout, currentDirectory: currentDirectory)
    }

    static func launch(_ executable: String, _ arguments: [String], currentDirectory: String? = nil) throws -> RobustnessProcess {
        try RobustnessProcess(executable: executable, arguments: arguments, currentDirectory: currentDirectory)
    }

    /// The file's bytes (empty when unreadable).
    static func bytes(_ path: String) -> [UInt8] {
        FileManager.default.contents(atPath: path).map { [UInt8]($0) } ?? []
    }

    static func write(_ bytes: [UInt8], to path: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }
}

struct RobustnessFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// How a subprocess ended, with what it printed.
struct RobustnessProcessResult: CustomStringConvertible {
    /// The exit code, or nil when a signal ended it.
    let exitCode: Int32?
    /// The signal that ended it, or nil when it exited.
    let signal: Int32?
    let timedOut: Bool
    let stdout: String
    let stderr: String
    let seconds: Double

    var status: String {
        if timedOut { return "timed out after \(Int(seconds)) s" }
        if let signal { return "killed by signal \(signal)" }
        return "exit \(exitCode ?? -1)"
    }

    /// stderr's non-empty lines.
    var errorLines: [Substring] { stderr.split(separator: "\n", omittingEmptySubsequences: true) }

    var description: String { "\(status); stderr: \(stderr.prefix(600))" }
}

/// A subprocess writing its output to temporary files (no pipe can fill up and block it).
///
/// Spawned with `posix_spawn` and reaped with `waitpid` here, not with Foundation's `Process`:
/// under the sanitizers, with many children at once, `Process` sometimes misses a child's
/// exit and `waitUntilExit()` never returns (seen with ASan and TSan here).
final class RobustnessProcess: @unchecked Sendable {
    let pid: pid_t
    private let outPath: String
    private let errPath: String
    private let started = Date()
    private var waitStatus: Int32?

    init(executable: String, arguments: [String], currentDirectory: String?) throws {
        let base = NSTemporaryDirectory() + "sqopt-proc-\(UUID().uuidString)"
        outPath = base + ".out"
        errPath = base + ".err"
        // `env -C DIR` changes the working directory for the child only.
        let command = (currentDirectory.map { ["/usr/bin/env", "-C", $0] } ?? []) + [executable] + arguments
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let argv: [UnsafeMutablePointer<CChar>?] = command.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var child: pid_t = 0
        let status = posix_spawn(&child, command[0], &actions, nil, argv, environ)
        guard status == 0 else {
            throw RobustnessFailure("cannot start \(command[0]): \(String(cString: strerror(status)))")
        }
        pid = child
    }

    /// Reaps the child if it has ended (non-blocking).
    var isRunning: Bool {
        if waitStatus != nil { return false }
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid { waitStatus = status }
        return waitStatus == nil
    }

    func send(_ signal: Int32) {
        if isRunning { kill(pid, signal) }
    }

    /// Waits for the end (SIGKILL after `timeout` seconds) and collects the result.
    func wait(timeout: Double) -> RobustnessProcessResult {
        let deadline = Date().addingTimeInterval(timeout)
        var timedOut = false
        while isRunning {
            if Date() > deadline {
                timedOut = true
                kill(pid, SIGKILL)
                var status: Int32 = 0
                if waitpid(pid, &status, 0) == pid { waitStatus = status }
                break
            }
            usleep(2_000)
        }
        let seconds = Date().timeIntervalSince(started)
        let status = waitStatus ?? 0
        let terminatingSignal = status & 0x7F  // WTERMSIG; 0 when it exited (WIFEXITED)
        let stdout = String(decoding: RobustnessSupport.bytes(outPath), as: UTF8.self)
        let stderr = String(decoding: RobustnessSupport.bytes(errPath), as: UTF8.self)
        try? FileManager.default.removeItem(atPath: outPath)
        try? FileManager.default.removeItem(atPath: errPath)
        return RobustnessProcessResult(exitCode: terminatingSignal == 0 ? (status >> 8) & 0xFF : nil,
                                       signal: terminatingSignal == 0 ? nil : terminatingSignal,
                                       timedOut: timedOut, stdout: stdout, stderr: stderr, seconds: seconds)
    }
}

/// Asserts a clean failure: exit `code` (1 by default), no signal, no timeout, and a
/// one-line message (the CLI's `error: ...`) that mentions each of `mentions`.
func expectRobustCleanFailure(_ result: RobustnessProcessResult, code: Int32 = 1, mentions: [String],
                        sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(result.signal == nil, "crashed: \(result)", sourceLocation: sourceLocation)
    #expect(!result.timedOut, "hung: \(result)", sourceLocation: sourceLocation)
    #expect(result.exitCode == code, "expected exit \(code): \(result)", sourceLocation: sourceLocation)
    if code == 1 {
        #expect(result.errorLines.count == 1, "expected a one-line error: \(result)", sourceLocation: sourceLocation)
    }
    for word in mentions {
        #expect(result.stderr.contains(word), "message should mention '\(word)': \(result)", sourceLocation: sourceLocation)
    }
}
