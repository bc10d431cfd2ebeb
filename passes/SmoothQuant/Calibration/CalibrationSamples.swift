import Foundation
import SQIR

/// One calibration sample: a tensor per graph input name.
public typealias CalibrationSample = [String: Tensor]

/// Where calibration samples come from. Samples are loaded one at a time, so a source never
/// needs to hold more than one in memory.
public protocol CalibrationSampleSource {
    /// Number of samples.
    var count: Int { get }
    /// Describes sample `index` in errors (e.g. its folder).
    func location(of index: Int) -> String
    /// Loads sample `index` (0 ..< count).
    func sample(at index: Int) throws -> CalibrationSample
}

/// Samples already in memory (tests, or samples built by the caller).
public struct InMemorySamples: CalibrationSampleSource {
    public let samples: [CalibrationSample]
    public init(_ samples: [CalibrationSample]) { self.samples = samples }
    public var count: Int { samples.count }
    public func location(of index: Int) -> String { "sample \(index)" }
    public func sample(at index: Int) throws -> CalibrationSample { samples[index] }
}

/// A calibration folder (`--calib DIR`) in one of two layouts, one sub-folder per sample:
/// - ONNX test data: `test_data_set_K/input_N.pb` (TensorProto; N = graph-input order);
/// - NumPy: `K/INPUT_NAME.npy`.
/// A folder that holds such files itself is one sample. Sub-folders are taken in natural
/// order (`test_data_set_2` before `test_data_set_10`).
///
/// Decoding `.pb` needs the ONNX protobuf layer, which passes do not import: the caller (the
/// CLI, via SQONNX) passes `decodeTensorProto`. Without it a `.pb` layout is an error.
public struct CalibrationDirectory: CalibrationSampleSource {
    public enum Layout: String, Sendable { case onnxTestData, numpy }

    public let path: String
    public let layout: Layout
    /// Sample folders, in order.
    public let sampleFolders: [String]
    /// Names of the graph's runtime inputs, in signature order (for `input_N.pb`).
    public let inputNames: [String]
    let decodeTensorProto: ((_ path: String) throws -> Tensor)?

    /// Scans `path`. `graphInputs` are the graph's inputs that are not initializers.
    public init(path: String, graphInputs: [Value],
                decodeTensorProto: ((_ path: String) throws -> Tensor)? = nil) throws {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw IRError(file: path, reason: "calibration data folder does not exist")
        }
        func entries(_ dir: String) throws -> [String] {
            do { return try fm.contentsOfDirectory(atPath: dir).filter { !$0.hasPrefix(".") } } catch {
                throw IRError(file: dir, reason: "cannot list calibration data folder: \(CalibrationStatistics.describe(error))")
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
        if layout == .onnxTestData && decodeTensorProto == nil {
            throw IRError(file: path, reason: "input_N.pb samples need a TensorProto decoder (use the sqopt CLI)")
        }
        self.path = path
        self.layout = layout
        self.sampleFolders = folders.map(\.0)
        self.inputNames = graphInputs.map(\.name)
        self.decodeTensorProto = decodeTensorProto
    }

    public var count: Int { sampleFolders.count }
    public func location(of index: Int) -> String { sampleFolders[index] }

    public func sample(at index: Int) throws -> CalibrationSample {
        let folder = sampleFolders[index]
        let files: [String]
        do { files = try FileManager.default.contentsOfDirectory(atPath: folder).sorted(by: Self.naturalOrder) } catch {
            throw IRError(file: folder, reason: "cannot list sample folder: \(CalibrationStatistics.describe(error))")
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
                guard let decode = decodeTensorProto else { throw IRError(file: full, reason: "no TensorProto decoder") }
                sample[inputNames[n]] = try decode(full)
            }
        }
        return sample
    }

    /// `a2` < `a10`: digit runs compare as numbers.
    static func naturalOrder(_ a: String, _ b: String) -> Bool {
        a.compare(b, options: [.numeric]) == .orderedAscending
    }
}

/// Checks a sample against the graph's inputs: every name is an input, every input is given,
/// dtypes match, ranks and static dims match. Errors name `location` and the input.
public func validateSample(_ sample: CalibrationSample, graphInputs: [Value], location: String) throws {
    let byName = Dictionary(graphInputs.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    for name in sample.keys.sorted() where byName[name] == nil {
        throw IRError(file: location, reason: "'\(name)' is not an input of the model (inputs: \(graphInputs.map(\.name).joined(separator: ", ")))")
    }
    for input in graphInputs {
        guard let t = sample[input.name] else {
            throw IRError(file: location, reason: "model input '\(input.name)' is missing from the sample")
        }
        guard let type = input.type else { continue }
        guard t.dtype == type.dtype else {
            throw IRError(file: location, reason: "input '\(input.name)' has dtype \(t.dtype), the model expects \(type.dtype)")
        }
        guard let dims = type.dims else { continue }
        guard dims.count == t.rank else {
            throw IRError(file: location, reason: "input '\(input.name)' has rank \(t.rank) (shape \(t.shape)), the model expects rank \(dims.count) (\(type))")
        }
        for (i, d) in dims.enumerated() {
            if let known = d.value, known != t.shape[i] {
                throw IRError(file: location, reason: "input '\(input.name)' has shape \(t.shape), the model expects \(type)")
            }
        }
    }
}
