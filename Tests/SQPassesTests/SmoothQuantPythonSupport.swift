import Foundation
import SQIR
import SQONNX
@testable import SQPasses

/// Paths and helpers for tests that check sqopt against onnxruntime and the independent numpy
/// reference (tools/fakequant_reference.py) through the project's Python environment.
enum SmoothQuantFixtures {
    /// The repository root (this file is Tests/SQPassesTests/…).
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// `.venv/bin/python` when tools/setup.sh has run.
    static var python: String? {
        let path = repo.appendingPathComponent(".venv/bin/python").path
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }

    static var hasPython: Bool { python != nil }

    static func model(_ name: String) -> String { repo.appendingPathComponent("models/\(name)/model.onnx").path }
    static func modelDir(_ name: String) -> String { repo.appendingPathComponent("models/\(name)").path }
    static func real(_ name: String) -> String { repo.appendingPathComponent("build/real/\(name)").path }
    static func hasReal(_ name: String) -> Bool {
        FileManager.default.fileExists(atPath: real(name) + "/model.onnx")
    }

    static func load(_ path: String) throws -> Model {
        try ONNXDecoder().decode(file: path)
    }

    static func write(_ model: Model, to path: String) throws {
        try ONNXEncoder().write(model, to: path)
    }

    /// A fresh temporary directory (removed by the caller with `cleanUp`).
    static func temporaryDirectory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sqopt-sq-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.path
    }

    static func cleanUp(_ dir: String) { try? FileManager.default.removeItem(atPath: dir) }

    /// Runs `tools/<script>` with the venv's python; returns exit status and output.
    @discardableResult
    static func runTool(_ script: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        guard let python else { throw IRError(reason: "no .venv (run tools/setup.sh)") }
        return try execute(python, [repo.appendingPathComponent("tools/\(script)").path] + arguments)
    }

    /// Runs a program to its end; its stdout and stderr together.
    static func execute(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Statistics computed by the numpy reference (`fakequant_reference.py stats`), as sqopt's
    /// type: each value observes a two-row tensor [channel minima, channel maxima], which gives
    /// exactly the reference's per-channel and per-tensor figures.
    static func referenceStatistics(model path: String, calib: String, graph: Graph) throws -> CalibrationStatistics {
        let dir = try temporaryDirectory()
        defer { cleanUp(dir) }
        let json = dir + "/stats.json"
        let (status, output) = try runTool("fakequant_reference.py", ["stats", path, "--calib", calib, "--json", json])
        guard status == 0 else { throw IRError(reason: "fakequant_reference.py stats failed: \(output)") }
        let data = try Data(contentsOf: URL(fileURLWithPath: json))
        guard let entries = try JSONSerialization.jsonObject(with: data) as? [String: [String: Any]] else {
            throw IRError(reason: "unexpected stats JSON")
        }
        var stats = CalibrationStatistics(fingerprint: ModelFingerprint.of(graph))
        for (name, entry) in entries {
            // Two observations whose varying dims (-1) differ (1, then 2): the first holds the
            // minima, the second the maxima, so channels and dims come out as the reference's.
            let dims = (entry["dims"] as? [Int]) ?? []
            let first = dims.map { $0 < 0 ? 1 : $0 }, second = dims.map { $0 < 0 ? 2 : $0 }
            let lows: [Float], highs: [Float]
            if let cmin = entry["channelMin"] as? [Double], let cmax = entry["channelMax"] as? [Double] {
                (lows, highs) = (cmin.map(Float.init), cmax.map(Float.init))
            } else {
                (lows, highs) = ([Float((entry["min"] as? Double) ?? 0)], [Float((entry["max"] as? Double) ?? 0)])
            }
            var s = ActivationStatistics()
            for (shape, row) in [(first, lows), (second, highs)] {
                let count = shape.reduce(1, *)
                let data = (0..<count).map { row[$0 % row.count] }
                data.withUnsafeBufferPointer { s.observe($0, shape: shape) }
            }
            stats[name] = s
        }
        return stats
    }
}
