import Foundation
import SQIR
import SQONNX

/// Access to the ONNX backend node tests (`onnx/backend/test/data/node` of the onnx 1.22.0
/// wheel), copied by tools/fetch_node_tests.sh into third_party_data/onnx-node-tests.
enum NodeTestData {
    static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The folder holding one sub-folder per node test, or nil when it is not set up.
    /// Order: $SQOPT_NODE_TESTS, third_party_data/onnx-node-tests, the repo venv's onnx.
    static func directory() -> URL? {
        let fm = FileManager.default
        var candidates: [URL] = []
        if let env = ProcessInfo.processInfo.environment["SQOPT_NODE_TESTS"], !env.isEmpty {
            candidates.append(URL(fileURLWithPath: env))
        }
        candidates.append(repositoryRoot.appendingPathComponent("third_party_data/onnx-node-tests"))
        let lib = repositoryRoot.appendingPathComponent(".venv/lib")
        if let pythons = try? fm.contentsOfDirectory(atPath: lib.path) {
            for p in pythons.sorted() where p.hasPrefix("python3") {
                candidates.append(lib.appendingPathComponent("\(p)/site-packages/onnx/backend/test/data/node"))
            }
        }
        return candidates.first { url in
            var isDirectory: ObjCBool = false
            return fm.fileExists(atPath: url.appendingPathComponent("test_abs/model.onnx").path, isDirectory: &isDirectory)
        }
    }

    /// Decodes a serialized TensorProto (`input_0.pb`).
    static func decodeTensor(at url: URL) throws -> Tensor {
        try ONNXDecoder().decodeTensor(file: url.path).tensor
    }
}

/// Element-wise comparison as onnx's backend runner does it, with the tolerance asked
/// for here: |actual - expected| <= atol + rtol * |expected|; NaN matches NaN.
/// Returns nil when equal, else a description of the first mismatch.
func mismatch(_ actual: Tensor, _ expected: Tensor, rtol: Double = 1e-3, atol: Double = 1e-5) -> String? {
    guard actual.dtype == expected.dtype else { return "element type \(actual.dtype), expected \(expected.dtype)" }
    guard actual.shape == expected.shape else { return "shape \(actual.shape), expected \(expected.shape)" }
    if actual.dtype == .string {
        return actual.strings == expected.strings ? nil : "string values differ"
    }
    let a = actual.doubleValues(), e = expected.doubleValues()
    var worst: (index: Int, error: Double)?
    var failures = 0
    for i in 0..<Swift.min(a.count, e.count) {
        if a[i].isNaN && e[i].isNaN { continue }
        if a[i] == e[i] { continue }
        let err = Swift.abs(a[i] - e[i])
        if err.isNaN || err > atol + rtol * Swift.abs(e[i]) {
            failures += 1
            if worst == nil || err > worst?.error ?? 0 || err.isNaN { worst = (i, err) }
        }
    }
    guard let worst else { return nil }
    return "\(failures) of \(e.count) elements differ; worst at \(worst.index): \(a[worst.index]) vs \(e[worst.index])"
}
