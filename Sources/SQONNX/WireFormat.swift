/// Protobuf wire-format helpers that do not need the generated code:
/// - a pre-flight scan of a whole ONNX file that bounds message nesting (protobuf-c's parser
///   recurses once per nested message, so a hostile file of millions of nested attributes
///   would overflow the stack) and reports truncation with a byte offset;
/// - splitting saved unknown-field bytes back into fields for re-emission.

/// Protobuf wire types.
enum WireType: UInt8 {
    case varint = 0
    case fixed64 = 1
    case lengthDelimited = 2
    case startGroup = 3
    case endGroup = 4
    case fixed32 = 5
}

/// A bounds-checked cursor over bytes.
struct WireReader {
    let bytes: UnsafeRawBufferPointer
    var position: Int

    init(_ bytes: UnsafeRawBufferPointer, position: Int = 0) {
        self.bytes = bytes
        self.position = position
    }

    /// Reads a varint that must end before `limit`; nil when truncated or longer than 10 bytes.
    mutating func varint(limit: Int) -> UInt64? {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while position < limit {
            let byte = bytes[position]
            position += 1
            if shift == 63 && byte > 1 { return nil }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
            if shift > 63 { return nil }
        }
        return nil
    }

    /// Skips `count` bytes that must end at or before `limit`.
    mutating func skip(_ count: UInt64, limit: Int) -> Bool {
        guard count <= UInt64(limit - position) else { return false }
        position += Int(count)
        return true
    }
}

/// The ONNX message kinds whose nested messages the scan follows.
enum WireMessage {
    case model, graph, node, attribute, tensor, sparseTensor, valueInfo, function
    case typeProto, typeTensor, typeSequence, typeMap, typeOptional, shape
    /// Messages without nested messages (OperatorSetId, StringStringEntry, Segment, Dimension).
    case leaf

    /// The message kind of length-delimited field `field`, or nil when the field is bytes,
    /// a string, a packed array or unknown (then its payload is skipped, not parsed).
    func child(_ field: UInt64) -> WireMessage? {
        switch (self, field) {
        case (.model, 7): return .graph
        case (.model, 8), (.model, 14): return .leaf
        case (.model, 25): return .function
        case (.graph, 1): return .node
        case (.graph, 5): return .tensor
        case (.graph, 11), (.graph, 12), (.graph, 13): return .valueInfo
        case (.graph, 15): return .sparseTensor
        case (.node, 5): return .attribute
        case (.attribute, 5), (.attribute, 10): return .tensor
        case (.attribute, 6), (.attribute, 11): return .graph
        case (.attribute, 14), (.attribute, 15): return .typeProto
        case (.attribute, 22), (.attribute, 23): return .sparseTensor
        case (.tensor, 3), (.tensor, 13): return .leaf
        case (.sparseTensor, 1), (.sparseTensor, 2): return .tensor
        case (.valueInfo, 2): return .typeProto
        case (.function, 7): return .node
        case (.function, 9): return .leaf
        case (.function, 11): return .attribute
        case (.function, 12): return .valueInfo
        case (.typeProto, 1), (.typeProto, 8): return .typeTensor
        case (.typeProto, 4): return .typeSequence
        case (.typeProto, 5): return .typeMap
        case (.typeProto, 9): return .typeOptional
        case (.typeTensor, 2): return .shape
        case (.typeSequence, 1), (.typeOptional, 1), (.typeMap, 2): return .typeProto
        case (.shape, 1): return .leaf
        default: return nil
        }
    }
}

/// Why `scanModelWireFormat` rejected a file.
enum WireScanFailure: Error, Equatable {
    case malformed(String)
    case tooDeep
}

/// Walks a serialized message (a ModelProto unless `root` says otherwise) without recursion. Returns nil when the bytes are well-formed
/// at the wire level with messages nested at most `maxDepth` deep, else why not.
func scanWireFormat(_ bytes: UnsafeRawBufferPointer, root: WireMessage = .model, maxDepth: Int) -> WireScanFailure? {
    var reader = WireReader(bytes)
    var stack: [(kind: WireMessage, end: Int)] = [(root, bytes.count)]
    let total = bytes.count
    func corrupt(_ what: String, at offset: Int) -> WireScanFailure {
        .malformed("\(what) at byte \(offset) of \(total) (truncated or corrupt file)")
    }
    while let top = stack.last {
        if reader.position == top.end {
            stack.removeLast()
            continue
        }
        let fieldStart = reader.position
        guard let tag = reader.varint(limit: top.end) else { return corrupt("bad field tag", at: fieldStart) }
        let field = tag >> 3
        guard field != 0, field <= 0x1FFF_FFFF else { return corrupt("invalid field number \(field)", at: fieldStart) }
        guard let wireType = WireType(rawValue: UInt8(tag & 7)) else {
            return corrupt("invalid wire type \(tag & 7)", at: fieldStart)
        }
        switch wireType {
        case .varint:
            guard reader.varint(limit: top.end) != nil else { return corrupt("bad varint", at: reader.position) }
        case .fixed64:
            guard reader.skip(8, limit: top.end) else { return corrupt("field runs past its end", at: fieldStart) }
        case .fixed32:
            guard reader.skip(4, limit: top.end) else { return corrupt("field runs past its end", at: fieldStart) }
        case .lengthDelimited:
            guard let length = reader.varint(limit: top.end) else { return corrupt("bad length", at: reader.position) }
            guard length <= UInt64(top.end - reader.position) else {
                return corrupt("field of \(length) bytes runs past its end", at: fieldStart)
            }
            if let child = top.kind.child(field) {
                guard stack.count < maxDepth else { return .tooDeep }
                stack.append((child, reader.position + Int(length)))
            } else {
                reader.position += Int(length)
            }
        case .startGroup, .endGroup:
            return corrupt("protobuf groups are not used by ONNX", at: fieldStart)
        }
    }
    return nil
}

/// One field of a saved unknown-field blob: its tag, wire type and payload as protobuf-c
/// stores it (for length-delimited fields the payload includes the length prefix).
struct UnknownFieldSlice {
    var fieldNumber: UInt32
    var wireType: WireType
    var payload: Range<Int>
}

/// Splits bytes that hold whole serialized fields. Nil when they are not well-formed.
func splitUnknownFields(_ bytes: UnsafeRawBufferPointer) -> [UnknownFieldSlice]? {
    var reader = WireReader(bytes)
    var fields: [UnknownFieldSlice] = []
    let end = bytes.count
    while reader.position < end {
        guard let tag = reader.varint(limit: end),
              let wireType = WireType(rawValue: UInt8(tag & 7)),
              tag >> 3 != 0, tag >> 3 <= 0x1FFF_FFFF else { return nil }
        let start = reader.position
        switch wireType {
        case .varint:
            guard reader.varint(limit: end) != nil else { return nil }
        case .fixed64:
            guard reader.skip(8, limit: end) else { return nil }
        case .fixed32:
            guard reader.skip(4, limit: end) else { return nil }
        case .lengthDelimited:
            guard let length = reader.varint(limit: end), reader.skip(length, limit: end) else { return nil }
        case .startGroup, .endGroup:
            return nil
        }
        fields.append(UnknownFieldSlice(fieldNumber: UInt32(tag >> 3), wireType: wireType, payload: start..<reader.position))
    }
    return fields
}

/// Appends `value` as a varint.
func appendVarint(_ value: UInt64, to out: inout [UInt8]) {
    var v = value
    while v >= 0x80 {
        out.append(UInt8(v & 0x7F) | 0x80)
        v >>= 7
    }
    out.append(UInt8(v))
}
