import CProtobufC
import ONNXProto
import SQIR
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The decode side of the protobuf-c bridge. Unsafe pointers stay in SQONNX: callers get
// Swift values, and tensor bytes as `TensorStorage`.

/// The allocator protobuf-c unpacks with. Every block is `malloc`-compatible and blocks of
/// 64 bytes or more are 64-byte aligned, so a tensor can adopt the block protobuf-c filled
/// (`raw_data`, `float_data`, ...) instead of copying it: adopted blocks are skipped when the
/// message is freed and released by their `TensorStorage` instead.
final class UnpackAllocator {
    private var adopted = Set<UnsafeMutableRawPointer>()
    /// The C allocator record; stable address for the allocator's lifetime.
    let allocator: UnsafeMutablePointer<ProtobufCAllocator>

    init() {
        allocator = UnsafeMutablePointer<ProtobufCAllocator>.allocate(capacity: 1)
        allocator.initialize(to: ProtobufCAllocator(
            alloc: { _, size in
                var block: UnsafeMutableRawPointer?
                if size >= 64 {
                    guard posix_memalign(&block, 64, size) == 0, let block else { return nil }
                    // Tensor bytes (raw_data): huge pages make their first touch cheap.
                    TensorStorage.adviseHugePages(block, byteCount: size)
                    return block
                }
                return malloc(max(size, 1))
            },
            free: { data, pointer in
                guard let data, let pointer else { return }
                let owner = Unmanaged<UnpackAllocator>.fromOpaque(data).takeUnretainedValue()
                if owner.adopted.remove(pointer) == nil { free(pointer) }
            },
            allocator_data: nil))
        allocator.pointee.allocator_data = Unmanaged.passUnretained(self).toOpaque()
    }

    deinit {
        allocator.deallocate()
    }

    /// Storage for `byteCount` bytes at `pointer`, a block this allocator handed to protobuf-c.
    /// Zero copy: the block is detached from the message and freed with the storage.
    func adopt(_ pointer: UnsafeRawPointer?, byteCount: Int) -> TensorStorage {
        guard let pointer, byteCount > 0 else { return TensorStorage(byteCount: 0) }
        let block = UnsafeMutableRawPointer(mutating: pointer)
        guard adopted.insert(block).inserted else {
            return TensorStorage(copying: UnsafeRawBufferPointer(start: pointer, count: byteCount))
        }
        return TensorStorage(borrowing: pointer, byteCount: byteCount, owner: MallocBlock(block))
    }
}

/// A `malloc`ed block, freed when the last tensor using it goes away.
final class MallocBlock: @unchecked Sendable {
    private let pointer: UnsafeMutableRawPointer
    init(_ pointer: UnsafeMutableRawPointer) { self.pointer = pointer }
    deinit { free(pointer) }
}

/// An unpacked message (ModelProto, TensorProto), freed — except adopted blocks — when this
/// object goes away.
final class Unpacked<Message> {
    let message: UnsafeMutablePointer<Message>
    let allocator: UnpackAllocator

    /// Unpacks `bytes` with the generated `unpack` function; nil when protobuf-c rejects them.
    init?(bytes: UnsafeRawBufferPointer,
          _ unpack: (UnsafeMutablePointer<ProtobufCAllocator>?, Int, UnsafePointer<UInt8>?) -> UnsafeMutablePointer<Message>?) {
        let allocator = UnpackAllocator()
        guard let base = bytes.baseAddress,
              let message = unpack(allocator.allocator, bytes.count, base.assumingMemoryBound(to: UInt8.self))
        else { return nil }
        self.message = message
        self.allocator = allocator
    }

    deinit {
        protobuf_c_message_free_unpacked(UnsafeMutableRawPointer(message).assumingMemoryBound(to: ProtobufCMessage.self),
                                         allocator.allocator)
    }
}

// MARK: - reading fields

/// A proto2 string field: "" when unset (protobuf-c leaves it NULL).
@inline(__always)
func string(_ field: UnsafePointer<CChar>?) -> String {
    guard let field else { return "" }
    return String(cString: field)
}

/// A proto2 string field, nil when unset.
@inline(__always)
func optionalString(_ field: UnsafePointer<CChar>?) -> String? {
    field.map { String(cString: $0) }
}

/// The elements of a repeated scalar field (`n_x`, `x`).
@inline(__always)
func array<T>(_ pointer: UnsafePointer<T>?, _ count: Int) -> UnsafeBufferPointer<T> {
    guard let pointer, count > 0 else { return UnsafeBufferPointer(start: nil, count: 0) }
    return UnsafeBufferPointer(start: pointer, count: count)
}

/// The messages of a repeated message field, skipping NULL entries.
@inline(__always)
func messages<T>(_ pointer: UnsafePointer<UnsafeMutablePointer<T>?>?, _ count: Int) -> [UnsafeMutablePointer<T>] {
    array(pointer, count).compactMap { $0 }
}

/// The bytes of a `bytes` field.
@inline(__always)
func byteArray(_ data: ProtobufCBinaryData) -> [UInt8] {
    guard let pointer = data.data, data.len > 0 else { return [] }
    return Array(UnsafeBufferPointer(start: pointer, count: data.len))
}

/// The message's unknown fields re-serialized (tag + payload each), or [] when it has none.
func unknownFieldBytes(_ base: ProtobufCMessage) -> [UInt8] {
    let fields = array(UnsafePointer(base.unknown_fields), Int(base.n_unknown_fields))
    guard !fields.isEmpty else { return [] }
    var out: [UInt8] = []
    for field in fields {
        appendVarint(UInt64(field.tag) << 3 | UInt64(field.wire_type.rawValue), to: &out)
        out.append(contentsOf: array(UnsafePointer(field.data), field.len))
    }
    return out
}

/// The serialized bytes of any generated message (its first member is `ProtobufCMessage`).
func packedBytes<Message>(_ message: UnsafePointer<Message>) -> [UInt8] {
    let base = UnsafeRawPointer(message).assumingMemoryBound(to: ProtobufCMessage.self)
    let size = protobuf_c_message_get_packed_size(base)
    return [UInt8](unsafeUninitializedCapacity: max(size, 1)) { buffer, initialized in
        initialized = size > 0 ? protobuf_c_message_pack(base, buffer.baseAddress) : 0
    }
}

/// True when the bytes are valid UTF-8 (so a Swift `String` holds them exactly).
func isValidUTF8(_ bytes: [UInt8]) -> Bool {
    String(validating: bytes, as: UTF8.self) != nil
}
