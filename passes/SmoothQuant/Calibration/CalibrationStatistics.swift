import Foundation
import SQIR

/// Calibration statistics of a model: one `ActivationStatistics` per value name, plus the
/// fingerprint of the graph they were gathered on (so a file from another model is refused).
///
/// JSON form (`--save-calib` / `--load-calib`; documented in docs/smoothquant.md):
/// ```
/// {"format": "sqopt-calibration", "version": 1, "fingerprint": "9f0c…", "samples": 16,
///  "percentile": null,
///  "values": {"/model/layers.0/input_layernorm/Mul_1_output_0":
///     {"channelMin": [...], "channelMax": [...], "min": -3.1, "max": 41.5,
///      "sampleCount": 16, "elementCount": 55296, "dims": [1, -1, 576], ...}}}
/// ```
public struct CalibrationStatistics: Codable, Sendable, Equatable {
    public static let formatName = "sqopt-calibration"
    public static let formatVersion = 1

    public var format: String = CalibrationStatistics.formatName
    public var version: Int = CalibrationStatistics.formatVersion
    /// `ModelFingerprint.of(graph)` of the graph the statistics describe.
    public var fingerprint: String
    /// Calibration samples run.
    public var samples: Int = 0
    /// Percentile of |x| used for static (O3) scales instead of the maximum; nil = maximum.
    public var percentile: Double?
    /// Statistics by value name.
    public var values: [String: ActivationStatistics] = [:]

    public init(fingerprint: String, percentile: Double? = nil) {
        self.fingerprint = fingerprint
        self.percentile = percentile
    }

    public subscript(_ name: String) -> ActivationStatistics? {
        get { values[name] }
        set { values[name] = newValue }
    }

    /// Per-tensor |x| bound for a static scale of `name` (percentile-clipped when set).
    public func staticAbsMax(_ name: String) -> Float? {
        values[name].map { $0.clippedAbsMax(percentile: percentile) }
    }

    /// Adds statistics gathered on other samples of the same model (exact).
    public mutating func merge(_ other: CalibrationStatistics) throws {
        guard other.fingerprint == fingerprint else {
            throw IRError(reason: "cannot merge calibration statistics of different models (fingerprint \(other.fingerprint), expected \(fingerprint))")
        }
        for (name, stats) in other.values {
            if var mine = values[name] {
                mine.merge(stats)
                values[name] = mine
            } else {
                values[name] = stats
            }
        }
        samples += other.samples
        if percentile == nil { percentile = other.percentile }
    }

    // MARK: JSON

    private static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return e
    }

    private static func decoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return d
    }

    /// The JSON bytes (keys sorted, so equal statistics give equal files).
    public func jsonData() throws -> Data {
        try Self.encoder().encode(self)
    }

    /// Parses JSON bytes; `file` names the source in errors.
    public static func decode(_ data: Data, file: String? = nil) throws -> CalibrationStatistics {
        let stats: CalibrationStatistics
        do {
            stats = try decoder().decode(CalibrationStatistics.self, from: data)
        } catch {
            throw IRError(file: file, reason: "not a calibration statistics file: \(Self.describe(error))")
        }
        guard stats.format == formatName else {
            throw IRError(file: file, reason: "not a calibration statistics file (format '\(stats.format)', expected '\(formatName)')")
        }
        guard stats.version == formatVersion else {
            throw IRError(file: file, reason: "calibration statistics version \(stats.version) is not supported (expected \(formatVersion))")
        }
        return stats
    }

    /// Writes the JSON file atomically.
    public func save(to path: String) throws {
        do {
            try jsonData().write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch let error as IRError {
            throw error.inFile(path)
        } catch {
            throw IRError(file: path, reason: "cannot write calibration statistics: \(Self.describe(error))")
        }
    }

    /// Reads a JSON file and checks that it was made for a graph with `fingerprint`.
    public static func load(from path: String, expectingFingerprint fingerprint: String? = nil) throws -> CalibrationStatistics {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw IRError(file: path, reason: "cannot read calibration statistics: \(describe(error))")
        }
        let stats = try decode(data, file: path)
        if let fingerprint, stats.fingerprint != fingerprint {
            throw IRError(file: path, reason: "calibration statistics were made for another model (fingerprint \(stats.fingerprint), this model has \(fingerprint))")
        }
        return stats
    }

    static func describe(_ error: Error) -> String {
        if let e = error as? DecodingError {
            switch e {
            case .dataCorrupted(let c): return c.debugDescription
            case .keyNotFound(let k, _): return "missing key '\(k.stringValue)'"
            case .typeMismatch(_, let c): return "wrong type at \(c.codingPath.map(\.stringValue).joined(separator: ".")): \(c.debugDescription)"
            case .valueNotFound(_, let c): return "missing value at \(c.codingPath.map(\.stringValue).joined(separator: "."))"
            @unknown default: return "\(e)"
            }
        }
        return (error as NSError).localizedDescription
    }
}

/// A short hash identifying a graph's structure: graph input names, dtypes and ranks, output
/// names, the sequence of node op types, and initializer names and shapes. Two graphs that
/// agree on these are treated as the same model by `--load-calib`; any edit that changes
/// value names or structure gives another fingerprint.
public enum ModelFingerprint {
    public static func of(_ graph: Graph) -> String {
        var hasher = FNV1a64()
        for v in graph.inputs {
            hasher.add("in:\(v.name):\(v.type?.dtype.shortName ?? "?"):\(v.type?.rank.map(String.init) ?? "*");")
        }
        for v in graph.outputs { hasher.add("out:\(v.name);") }
        for n in graph.nodes { hasher.add("node:\(n.qualifiedOpType);") }
        for v in graph.initializers {
            hasher.add("init:\(v.name):\(v.constant?.shape.map(String.init).joined(separator: "x") ?? "?");")
        }
        return String(hasher.value, radix: 16)
    }
}

/// 64-bit FNV-1a (stable across runs and platforms, unlike `Hasher`).
struct FNV1a64 {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325
    mutating func add(_ s: String) {
        for byte in s.utf8 {
            value ^= UInt64(byte)
            value = value &* 0x0000_0100_0000_01b3
        }
    }
}
