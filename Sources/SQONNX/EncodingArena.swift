import CProtobufC
import ONNXProto
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Memory for the C message tree the encoder builds: a bump allocator freed in one go, plus
/// messages unpacked from opaque bytes (functions, opaque attributes) freed with protobuf-c.
/// Tensor bytes are not copied here: `raw_data` points into the tensors' own storage, which
/// the caller keeps alive until packing is done.
final class EncodingArena {
    private var chunks: [UnsafeMutableRawPointer] = []
    private var cursor: UnsafeMutableRawPointer?
    private var remaining = 0
    private var unpacked: [UnsafeMutablePointer<ProtobufCMessage>] = []
    private static let chunkSize = 1 << 16

    deinit {
        for message in unpacked { protobuf_c_message_free_unpacked(message, nil) }
        for chunk in chunks { free(chunk) }
    }

    /// Zeroed memory for `count` values of `T` (16-byte aligned).
    func allocate<T>(_ type: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        let size = max(MemoryLayout<T>.stride * count, 1)
        let rounded = (size + 15) & ~15
        if rounded > remaining {
            let chunkBytes = max(Self.chunkSize, rounded)
            guard let chunk = calloc(chunkBytes, 1) else {
                // Out of memory while building a few pointers: nothing sensible remains.
                preconditionFailure("sqopt: out of memory encoding the model")
            }
            chunks.append(chunk)
            cursor = chunk
            remaining = chunkBytes
        }
        guard let block = cursor else { preconditionFailure("arena cursor missing") }
        cursor = block + rounded
        remaining -= rounded
        return block.bindMemory(to: T.self, capacity: max(count, 1))
    }

    /// A message initialized with its generated `__init` function.
    func message<T>(_ initialize: (UnsafeMutablePointer<T>) -> Void) -> UnsafeMutablePointer<T> {
        let pointer = allocate(T.self, count: 1)
        initialize(pointer)
        return pointer
    }

    /// A NUL-terminated copy of `text`.
    func cString(_ text: String) -> UnsafeMutablePointer<CChar> {
        let utf8 = Array(text.utf8)
        let pointer = allocate(CChar.self, count: utf8.count + 1)
        utf8.withUnsafeBufferPointer { source in
            if let base = source.baseAddress { UnsafeMutableRawPointer(pointer).copyMemory(from: base, byteCount: source.count) }
        }
        pointer[utf8.count] = 0
        return pointer
    }

    /// A string field: NULL (unset) for "".
    func optionalCString(_ text: String) -> UnsafeMutablePointer<CChar>? {
        text.isEmpty ? nil : cString(text)
    }

    /// A copy of `bytes` as a `bytes` field.
    func binary(_ bytes: [UInt8]) -> ProtobufCBinaryData {
        let pointer = allocate(UInt8.self, count: bytes.count)
        bytes.withUnsafeBufferPointer { source in
            if let base = source.baseAddress { pointer.update(from: base, count: source.count) }
        }
        return ProtobufCBinaryData(len: bytes.count, data: pointer)
    }

    /// A C array holding `items`.
    func array<T>(_ items: [T]) -> UnsafeMutablePointer<T>? {
        guard !items.isEmpty else { return nil }
        let pointer = allocate(T.self, count: items.count)
        for (i, item) in items.enumerated() { (pointer + i).initialize(to: item) }
        return pointer
    }

    /// A C array of message pointers (`T **`).
    func pointers<T>(_ items: [UnsafeMutablePointer<T>]) -> UnsafeMutablePointer<UnsafeMutablePointer<T>?>? {
        array(items.map { Optional($0) })
    }

    /// Strings as a `char **` array.
    func cStrings(_ items: [String]) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? {
        array(items.map { Optional(cString($0)) })
    }

    /// `bytes` as unknown fields of a message (they must be whole serialized fields, as
    /// `unknownFieldBytes` produced them). Returns false when they are not well-formed.
    func setUnknownFields(_ bytes: [UInt8], on base: inout ProtobufCMessage) -> Bool {
        guard !bytes.isEmpty else { return true }
        let copy = binary(bytes)
        guard let data = copy.data,
              let slices = splitUnknownFields(UnsafeRawBufferPointer(start: data, count: copy.len)) else { return false }
        let fields = slices.map { slice in
            ProtobufCMessageUnknownField(
                tag: slice.fieldNumber,
                wire_type: ProtobufCWireType(rawValue: UInt32(slice.wireType.rawValue)),
                len: slice.payload.count,
                data: data + slice.payload.lowerBound)
        }
        base.n_unknown_fields = UInt32(fields.count)
        base.unknown_fields = array(fields)
        return true
    }

    /// Keeps a message unpacked by protobuf-c (default allocator) until the arena goes away.
    func own<T>(_ message: UnsafeMutablePointer<T>) {
        unpacked.append(UnsafeMutableRawPointer(message).assumingMemoryBound(to: ProtobufCMessage.self))
    }
}
