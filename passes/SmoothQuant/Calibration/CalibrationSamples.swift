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
