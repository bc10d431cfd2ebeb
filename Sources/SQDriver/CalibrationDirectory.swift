import Foundation
import SQIR
import SQONNX
import SQPasses

/// A calibration folder (`--calib DIR`) in one of two layouts, one sub-folder per sample:
/// - ONNX test data: `test_data_set_K/input_N.pb` (TensorProto; N = graph-input order);
/// - NumPy: `K/INPUT_NAME.npy`.
/// A folder that holds such files itself is one sample. Sub-folders are taken in natural
/// order (`test_data_set_2` before `test_data_set_10`).
///
/// File I/O lives here, in the driver, not in the pass library: `calibrate` only sees a
/// `CalibrationSampleSource` (`CalibrationSamplesKey`). `.pb` files are decoded with SQONNX,
/// `.npy` files with SQONNX's `NpyReader`.
public struct CalibrationDirectory: CalibrationSampleSource {
    public enum Layout: String, Sendable { case onnxTestData, numpy }

    public let path: String
    public let layout: Layout
    /// Sample folders, in order.
    public let sampleFolders: [String]
    /// Names of the graph's runtime inputs, in signature order (for `input_N.pb`).
    public let inputNames: [String]

    /// Scans `path`. `graphInputs` are the graph's inputs that are not initializers.
    public init(path: String, graphInputs: [Value]) throws {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw IRError(file: path, reason: "calibration data folder does not exist")
        }
        func entries(_ dir: String) throws -> [String] {
            do { return try fm.contentsOfDirectory(atPath: dir).filter { !$0.hasPrefix(".") } } catch {
                throw IRError(file: dir, reason: "cannot list calibration data folder: \((error as NSError).localizedDescription)")
            }
        }
        func layoutOf(_ dir: String) throws -> Layout? {
            let files = try entries(dir)
            if files.contains(where: { $0.hasPrefix("input_") && $0.hasSuffix(".pb") }) { return .onnxTestData }
            if files.contains(where: { $0.hasSuffix(".npy") }) { return .numpy }
            return nil
        }
        var folders: [(String, Layout)] = []
        if let own = try layoutOf(path) {
            folders = [(path, own)]
        } else {
            for name in try entries(path).sorted(by: Self.naturalOrder) {
                let sub = (path as NSString).appendingPathComponent(name)
                var isDir: ObjCBool = false
                guard fm.fileExists(atPath: sub, isDirectory: &isDir), isDir.boolValue,
                      let layout = try layoutOf(sub) else { continue }
                folders.append((sub, layout))
            }
        }
        guard let layout = folders.first?.1 else {
            throw IRError(file: path, reason: "no calibration samples found (expected test_data_set_*/input_N.pb or one folder per sample of INPUT_NAME.npy)")
        }
        if let mixed = folders.first(where: { $0.1 != layout }) {
            throw IRError(file: mixed.0, reason: "mixes sample layouts (\(layout.rawValue) and \(mixed.1.rawValue))")
        }
        self.path = path
        self.layout = layout
        self.sampleFolders = folders.map(\.0)
        self.inputNames = graphInputs.map(\.name)
    }

    public var count: Int { sampleFolders.count }
    public func location(of index: Int) -> String { sampleFolders[index] }

    public func sample(at index: Int) throws -> CalibrationSample {
        let folder = sampleFolders[index]
        let files: [String]
        do { files = try FileManager.default.contentsOfDirectory(atPath: folder).sorted(by: Self.naturalOrder) } catch {
            throw IRError(file: folder, reason: "cannot list sample folder: \((error as NSError).localizedDescription)")
        }
        var sample: CalibrationSample = [:]
        switch layout {
        case .numpy:
            for file in files where file.hasSuffix(".npy") {
                let name = String(file.dropLast(4))
                sample[name] = try NpyReader.read(path: (folder as NSString).appendingPathComponent(file))
            }
        case .onnxTestData:
            for file in files where file.hasPrefix("input_") && file.hasSuffix(".pb") {
                let full = (folder as NSString).appendingPathComponent(file)
                guard let n = Int(file.dropFirst(6).dropLast(3)), n >= 0 else {
                    throw IRError(file: full, reason: "expected a file named input_N.pb")
                }
                guard n < inputNames.count else {
                    throw IRError(file: full, reason: "input \(n) does not exist: the model has \(inputNames.count) input(s) (\(inputNames.joined(separator: ", ")))")
                }
                sample[inputNames[n]] = try ModelIO.loadTensor(full).0
            }
        }
        return sample
    }

    /// `a2` < `a10`: digit runs compare as numbers.
    static func naturalOrder(_ a: String, _ b: String) -> Bool {
        a.compare(b, options: [.numeric]) == .orderedAscending
    }
}
