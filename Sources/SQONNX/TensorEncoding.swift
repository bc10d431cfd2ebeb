import CProtobufC
import ONNXProto
import SQIR

/// State of one encoding: the arena holding the C message tree and, when writing external
/// data, the layout of the data file.
final class EncodeContext {
    let file: String
    let arena = EncodingArena()
    /// File name (relative to the model's folder) external tensors go to; nil: all inline.
    let externalLocation: String?
    let externalThreshold: Int
    /// Tensors placed in the external data file, in file order.
    private(set) var externalTensors: [(offset: Int, storage: TensorStorage)] = []
    private(set) var externalSize = 0

    init(file: String, externalLocation: String?, externalThreshold: Int) {
        self.file = file
        self.externalLocation = externalLocation
        self.externalThreshold = externalThreshold
    }

    /// Offsets are 64-byte aligned; tensors of 1 MiB or more start on a 4 KiB page so that
    /// readers (onnxruntime among them) can memory-map them.
    static func alignment(forByteCount byteCount: Int) -> Int {
        byteCount >= 1 << 20 ? 4096 : 64
    }

    /// A TensorProto for `tensor`. Numeric data goes to `raw_data` (little-endian), pointing
    /// into the tensor's storage without a copy; with `allowExternal` and an external
    /// location, tensors of at least `externalThreshold` bytes go to the data file instead.
    func encodeTensor(_ tensor: Tensor, name: String, allowExternal: Bool) -> UnsafeMutablePointer<Onnx__TensorProto> {
        let proto: UnsafeMutablePointer<Onnx__TensorProto> = arena.message(onnx__tensor_proto__init)
        proto.pointee.n_dims = tensor.shape.count
        proto.pointee.dims = arena.array(tensor.shape.map { Int64($0) })
        proto.pointee.has_data_type = 1
        proto.pointee.data_type = tensor.dtype.rawValue
        proto.pointee.name = arena.optionalCString(name)
        if tensor.dtype == .string {
            proto.pointee.n_string_data = tensor.strings.count
            proto.pointee.string_data = arena.array(tensor.strings.map { arena.binary($0) })
            return proto
        }
        let storage = tensor.storage
        if allowExternal, let externalLocation, storage.byteCount >= externalThreshold {
            let alignment = Self.alignment(forByteCount: storage.byteCount)
            let offset = (externalSize + alignment - 1) / alignment * alignment
            externalTensors.append((offset, storage))
            externalSize = offset + storage.byteCount
            let entries = [("location", externalLocation), ("offset", String(offset)), ("length", String(storage.byteCount))]
            proto.pointee.n_external_data = entries.count
            proto.pointee.external_data = arena.pointers(entries.map { key, value in
                let entry: UnsafeMutablePointer<Onnx__StringStringEntryProto> = arena.message(onnx__string_string_entry_proto__init)
                entry.pointee.key = arena.cString(key)
                entry.pointee.value = arena.cString(value)
                return entry
            })
            proto.pointee.has_data_location = 1
            proto.pointee.data_location = externalDataLocation
            return proto
        }
        proto.pointee.has_raw_data = 1
        proto.pointee.raw_data = ProtobufCBinaryData(
            len: storage.byteCount,
            data: storage.byteCount > 0 ? storage.bytes.baseAddress.map { UnsafeMutablePointer(mutating: $0.assumingMemoryBound(to: UInt8.self)) } : nil)
        return proto
    }

    /// Writes the external tensors, padded to their offsets, to `sink`.
    func writeExternalData(to sink: FileSink) {
        for (offset, storage) in externalTensors {
            if offset > sink.count { sink.appendZeros(offset - sink.count) }
            sink.append(storage.bytes)
        }
    }

    /// Unpacks opaque bytes saved at decode time into a message the arena frees later.
    func unpackOpaque<T>(_ bytes: [UInt8], what: String, location: String,
                         _ unpack: (UnsafeMutablePointer<ProtobufCAllocator>?, Int, UnsafePointer<UInt8>?) -> UnsafeMutablePointer<T>?) throws -> UnsafeMutablePointer<T> {
        let message = bytes.withUnsafeBufferPointer { buffer -> UnsafeMutablePointer<T>? in
            var empty: UInt8 = 0
            return withUnsafePointer(to: &empty) { fallback in
                unpack(nil, buffer.count, buffer.baseAddress ?? fallback)
            }
        }
        guard let message else {
            throw ONNXError.invalidModel(file: file, location: location, reason: "the saved \(what) bytes are not a valid \(what)")
        }
        arena.own(message)
        return message
    }

    /// Attaches saved unknown-field bytes to a message.
    func setUnknownFields(_ bytes: [UInt8], on base: inout ProtobufCMessage, location: String) throws {
        guard arena.setUnknownFields(bytes, on: &base) else {
            throw ONNXError.invalidModel(file: file, location: location, reason: "its saved unknown-field bytes are not well-formed protobuf")
        }
    }
}
