import Foundation
import Testing

/// Helpers of the CLI end-to-end tests: they run the built `sqopt` binary as a subprocess
/// (`swift build --build-tests` builds it: it is a product of the package), check exit codes
/// and output, and hand numeric checks to Python + onnxruntime (`$SQOPT_PYTHON`, else
/// `.venv/bin/python`; `tools/setup.sh` creates it).
enum CLI {
    /// The package root (this file is Tests/CLITests/CLITestSupport.swift).
    static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    /// The `sqopt` binary beside the test bundle, else `.build/debug/sqopt`.
    static func binary() throws -> String {
        var candidates: [String] = []
        if let exe = Bundle.main.executableURL {
            var dir = exe.deletingLastPathComponent()
            for _ in 0..<4 {
                candidates.append(dir.appendingPathComponent("sqopt").path)
                dir = dir.deletingLastPathComponent()
            }
        }
        candidates.append(path(".build/debug/sqopt"))
        for c in candidates where FileManager.default.isExecutableFile(atPath: c) { return c }
        throw CLITestError("sqopt binary not found (tried \(candidates.joined(separator: ", "))): run `swift build --build-tests`")
    }

    struct Result: CustomStringConvertible {
        let status: Int32
        let stdout: String
        let stderr: String
        var description: String { "exit \(status)\n--- stdout\n\(stdout)\n--- stderr\n\(stderr)" }
    }

    /// Runs `sqopt ARGS` (in `directory`, default the package root) and waits.
    static func run(_ args: [String], in directory: String? = nil, environment: [String: String] = [:]) throws -> Result {
        try execute(binary(), args, in: directory, environment: environment)
    }

    /// Runs an executable; stdout/stderr go through temporary files (no pipe deadlocks).
    static func execute(_ executable: String, _ args: [String], in directory: String? = nil,
                        environment: [String: String] = [:]) throws -> Result {
        let scratch = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let outPath = scratch + "/stdout", errPath = scratch + "/stderr"
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = args
        process.currentDirectoryURL = URL(fileURLWithPath: directory ?? root.path)
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "SQOPT_UPDATE_SNAPSHOTS")
        for (k, v) in environment { env[k] = v }
        process.environment = env
        let outHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        let errHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        process.standardOutput = outHandle
        process.standardError = errHandle
        try process.run()
        process.waitUntilExit()
        try outHandle.close()
        try errHandle.close()
        return Result(status: process.terminationStatus,
                      stdout: try String(contentsOfFile: outPath, encoding: .utf8),
                      stderr: try String(contentsOfFile: errPath, encoding: .utf8))
    }

    /// The Python with onnx + onnxruntime: `$SQOPT_PYTHON`, else the package's `.venv`.
    static func python() throws -> String {
        if let env = ProcessInfo.processInfo.environment["SQOPT_PYTHON"], !env.isEmpty { return env }
        let venv = path(".venv/bin/python")
        guard FileManager.default.isExecutableFile(atPath: venv) else {
            throw CLITestError("no Python with onnxruntime: run tools/setup.sh (creates .venv) or set SQOPT_PYTHON")
        }
        return venv
    }

    /// Runs a Python script (given as text) with arguments; returns its stdout, failing the
    /// test with stderr when it exits non-zero.
    static func runPython(_ script: String, _ args: [String]) throws -> String {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/check.py"
        try script.write(toFile: file, atomically: true, encoding: .utf8)
        let result = try execute(python(), [file] + args)
        guard result.status == 0 else { throw CLITestError("python check failed:\n\(result.stderr)") }
        return result.stdout
    }

    /// Parses a JSON object printed by a command.
    static func json(_ text: String) throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw CLITestError("not a JSON object:\n\(text)")
        }
        return object
    }

    static func temporaryDirectory() throws -> String {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("sqopt-cli-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// A copy of `models/NAME` in a fresh temporary directory (tests never write into the
    /// repository). Returns the copied folder.
    static func copyModel(_ name: String, includeData: Bool = true) throws -> String {
        let dir = try temporaryDirectory() + "/" + name
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let source = path("models/\(name)")
        for entry in try FileManager.default.contentsOfDirectory(atPath: source) {
            if !includeData && entry != "model.onnx" { continue }
            try FileManager.default.copyItem(atPath: source + "/" + entry, toPath: dir + "/" + entry)
        }
        return dir
    }

    static let models = ["tiny-opt", "tiny-llama", "tiny-bert"]
}

struct CLITestError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}
