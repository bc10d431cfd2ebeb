import SQIR

/// Everything that can go wrong reading or writing an ONNX file.
///
/// Every case names the file; cases about one tensor, node or value name it in `location`
/// (`tensor 'w'`, `node 'mm' (MatMul) attribute 'value'`). `description` is the one-line
/// message the CLI prints: `FILE: LOCATION: reason`.
public enum ONNXError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The file could not be opened, stat'ed or mapped.
    case unreadable(file: String, reason: String)
    /// The file has zero bytes.
    case emptyFile(file: String)
    /// The bytes are not a well-formed ONNX protobuf (truncated, random, wrong wire types).
    case malformed(file: String, reason: String)
    /// Messages nest deeper than `ONNXDecoder.Options.maxNestingDepth`.
    case nestingTooDeep(file: String, limit: Int)
    /// A tensor's element type is not one sqopt supports.
    case unknownDType(file: String, location: String, dataType: Int32)
    /// A tensor whose dims product overflows or exceeds `maxTensorBytes`.
    case tensorTooLarge(file: String, location: String, reason: String)
    /// A tensor whose data does not match its dtype and dims, or that is otherwise invalid.
    case invalidTensor(file: String, location: String, reason: String)
    /// An external-data reference that is refused or cannot be resolved.
    case externalData(file: String, location: String, reason: String)
    /// A structural problem in a graph, node, attribute or value description.
    case invalidModel(file: String, location: String, reason: String)
    /// A feature of the file that sqopt cannot represent.
    case unsupported(file: String, location: String, reason: String)
    /// The decoded graph breaks an IR invariant (undefined value, cycle, ...).
    case verification(file: String, location: String?, reason: String)
    /// Writing the output failed (nothing is left behind; an existing file is untouched).
    case writeFailed(file: String, reason: String)
    /// The output path is the model's own input file.
    case outputIsInput(file: String)

    /// The file the error is about.
    public var file: String {
        switch self {
        case .unreadable(let file, _), .emptyFile(let file), .malformed(let file, _),
             .nestingTooDeep(let file, _), .unknownDType(let file, _, _),
             .tensorTooLarge(let file, _, _), .invalidTensor(let file, _, _),
             .externalData(let file, _, _), .invalidModel(let file, _, _),
             .unsupported(let file, _, _), .verification(let file, _, _),
             .writeFailed(let file, _), .outputIsInput(let file):
            return file
        }
    }

    /// The tensor, node or value the error is about, when there is one.
    public var location: String? {
        switch self {
        case .unknownDType(_, let location, _), .tensorTooLarge(_, let location, _),
             .invalidTensor(_, let location, _), .externalData(_, let location, _),
             .invalidModel(_, let location, _), .unsupported(_, let location, _):
            return location
        case .verification(_, let location, _):
            return location
        default:
            return nil
        }
    }

    /// Why it failed, without file and location.
    public var reason: String {
        switch self {
        case .unreadable(_, let reason): return "cannot read the file: \(reason)"
        case .emptyFile: return "the file is empty, not an ONNX model"
        case .malformed(_, let reason): return "not a valid ONNX model: \(reason)"
        case .nestingTooDeep(_, let limit): return "not a valid ONNX model: messages nest deeper than \(limit) levels"
        case .unknownDType(_, _, let dataType): return "unsupported tensor data type \(dataType)"
        case .tensorTooLarge(_, _, let reason): return reason
        case .invalidTensor(_, _, let reason): return reason
        case .externalData(_, _, let reason): return "external data: \(reason)"
        case .invalidModel(_, _, let reason): return reason
        case .unsupported(_, _, let reason): return "unsupported: \(reason)"
        case .verification(_, _, let reason): return reason
        case .writeFailed(_, let reason): return "cannot write the model: \(reason)"
        case .outputIsInput: return "the output path is the input model itself; choose another output"
        }
    }

    public var description: String {
        [file, location, reason].compactMap { $0 }.joined(separator: ": ")
    }

    /// An IR verifier error re-labelled with the file it came from.
    init(verifying error: IRError, file: String) {
        self = .verification(file: error.file ?? file, location: error.location, reason: error.reason)
    }
}
