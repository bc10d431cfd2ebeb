import Foundation
import SQIR

/// One set of graph inputs (a calibration or verification sample).
struct Sample {
    let name: String
    let inputs: [String: Tensor]
}

/// Finds and reads samples in the two layouts sqopt accepts:
/// - ONNX test-data folders: `test_data_set_N/input_K.pb` (TensorProto, graph-input order; a
///   tensor's own name, when set, must match the input it is given to);
/// - one folder per sample of `INPUT_NAME.npy` files.
/// A directory may be one sample itself or hold sample subfolders.
enum SampleLoader {
    /// The sample folders under `root` (or `root` itself when it is a sample), in natural order.
    static func discover(_ root: String) throws -> [String] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDir), isDir.boolValue else {
            throw DriverError("\(root): no such directory")
        }
        if isSample(root) { return [root] }
        let children = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        let samples = children.sorted(by: naturalOrder).map { (root as NSString).appendingPathComponent($0) }.filter(isSample)
        guard !samples.isEmpty else {
            throw DriverError("\(root): no samples found (expected test_data_set_*/input_N.pb folders or folders of INPUT_NAME.npy files)")
        }
        return samples
    }

    static func isSample(_ dir: String) -> Bool {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return files.contains { ($0.hasPrefix("input_") && $0.hasSuffix(".pb")) || $0.hasSuffix(".npy") }
    }

    /// Reads one sample folder, checking names against the model's graph inputs.
    static func load(_ dir: String, graphInputs: [Value]) throws -> Sample {
        let files = try FileManager.default.contentsOfDirectory(atPath: dir)
        var inputs: [String: Tensor] = [:]
        let pbFiles = files.filter { $0.hasPrefix("input_") && $0.hasSuffix(".pb") }
        if !pbFiles.isEmpty {
            for file in pbFiles {
                guard let index = Int(file.dropFirst(6).dropLast(3)) else { continue }
                let path = (dir as NSString).appendingPathComponent(file)
                guard index < graphInputs.count else {
                    throw DriverError("\(path): input \(index) but the model has \(graphInputs.count) input(s)")
                }
                let (tensor, name) = try ModelIO.loadTensor(path)
                let expected = graphInputs[index].name
                if let name, !name.isEmpty, name != expected {
                    throw DriverError("\(path): tensor '\(name)' does not match model input \(index) '\(expected)'")
                }
                inputs[expected] = tensor
            }
        } else {
            let known = Set(graphInputs.map(\.name))
            for file in files where file.hasSuffix(".npy") {
                let name = String(file.dropLast(4))
                let path = (dir as NSString).appendingPathComponent(file)
                guard known.contains(name) else {
                    var msg = "\(path): the model has no input named '\(name)'"
                    if let guess = closestMatch(name, in: Array(known)) { msg += "; did you mean '\(guess)'?" }
                    throw DriverError(msg)
                }
                inputs[name] = try NPY.read(path)
            }
        }
        return Sample(name: (dir as NSString).lastPathComponent, inputs: inputs)
    }

    /// `test_data_set_2` before `test_data_set_10`.
    static func naturalOrder(_ a: String, _ b: String) -> Bool {
        a.compare(b, options: [.numeric]) == .orderedAscending
    }
}

/// A plain failure with a message (exit code 1).
struct DriverError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}
