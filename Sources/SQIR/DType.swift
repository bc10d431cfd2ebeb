/// Element types of tensors, numbered exactly as ONNX's `TensorProto.DataType`.
///
/// The raw values are the wire values; `DType(rawValue:)` returning nil means the file
/// carries a type sqopt does not know (the decoder reports it with the tensor's name).
public enum DType: Int32, Sendable, CaseIterable, CustomStringConvertible {
    case float = 1
    case uint8 = 2
    case int8 = 3
    case uint16 = 4
    case int16 = 5
    case int32 = 6
    case int64 = 7
    case string = 8
    case bool = 9
    case float16 = 10
    case double = 11
    case uint32 = 12
    case uint64 = 13
    case bfloat16 = 16

    /// Bytes per element in the little-endian raw encoding; nil for `string`.
    public var byteSize: Int? {
        switch self {
        case .bool, .int8, .uint8: return 1
        case .int16, .uint16, .float16, .bfloat16: return 2
        case .float, .int32, .uint32: return 4
        case .double, .int64, .uint64: return 8
        case .string: return nil
        }
    }

    /// Short name used by the IR printer and parser (`f32`, `i64`, ...).
    public var shortName: String {
        switch self {
        case .float: return "f32"
        case .uint8: return "u8"
        case .int8: return "i8"
        case .uint16: return "u16"
        case .int16: return "i16"
        case .int32: return "i32"
        case .int64: return "i64"
        case .string: return "str"
        case .bool: return "bool"
        case .float16: return "f16"
        case .double: return "f64"
        case .uint32: return "u32"
        case .uint64: return "u64"
        case .bfloat16: return "bf16"
        }
    }

    public init?(shortName: String) {
        guard let match = DType.allCases.first(where: { $0.shortName == shortName }) else { return nil }
        self = match
    }

    public var isFloatingPoint: Bool { self == .float || self == .float16 || self == .bfloat16 || self == .double }
    public var isInteger: Bool {
        switch self {
        case .int8, .uint8, .int16, .uint16, .int32, .uint32, .int64, .uint64: return true
        default: return false
        }
    }

    public var description: String { shortName }
}
