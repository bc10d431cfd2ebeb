import CProtobufC
import ONNXProto
import SQIR

// Single TensorProto files, as in the ONNX test-data layout (`test_data_set_0/input_0.pb`).

extension ONNXDecoder {
    /// Decodes a file holding one serialized TensorProto. Returns the tensor and its name
    /// (nil when unnamed). Same checks and errors as initializers; external data is looked up
    /// in the file's folder.
    public func decodeTensor(file path: String) throws(ONNXError) -> (tensor: Tensor, name: String?) {
        let mapping = try Self.map(path)
        return try withExtendedLifetime(mapping) { () throws(ONNXError) in
            try decodeTensor(mapping.bytes, file: path, modelDirectory: Self.directory(of: path))
        }
    }

    /// Decodes one serialized TensorProto held in memory (`fileName` names it in errors).
    public func decodeTensor(bytes: [UInt8], fileName: String = "<memory>") throws(ONNXError) -> (tensor: Tensor, name: String?) {
        let result: Result<(tensor: Tensor, name: String?), ONNXError> = bytes.withUnsafeBytes { raw in
            do throws(ONNXError) {
                return .success(try decodeTensor(raw, file: fileName, modelDirectory: nil))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    private func decodeTensor(_ bytes: UnsafeRawBufferPointer, file: String, modelDirectory: String?) throws(ONNXError) -> (tensor: Tensor, name: String?) {
        let unpacked = try unpack(bytes, root: .tensor, file: file, onnx__tensor_proto__unpack)
        let context = DecodeContext(file: file, options: options, allocator: unpacked.allocator, modelDirectory: modelDirectory)
        let proto = unpacked.message.pointee
        let name = string(proto.name)
        do {
            let tensor = try withExtendedLifetime(unpacked) {
                try context.decodeTensor(proto, location: name.isEmpty ? "tensor" : "tensor '\(name)'")
            }
            return (tensor, name.isEmpty ? nil : name)
        } catch let error as ONNXError {
            throw error
        } catch {
            throw ONNXError.invalidTensor(file: file, location: "tensor", reason: "\(error)")
        }
    }
}

extension ONNXEncoder {
    /// One tensor serialized as a TensorProto (`raw_data`, or `string_data` for strings),
    /// named `name` when given.
    public func encodeTensor(_ tensor: Tensor, name: String? = nil) -> [UInt8] {
        let context = EncodeContext(file: "<memory>", externalLocation: nil, externalThreshold: .max)
        let proto = context.encodeTensor(tensor, name: name ?? "", allowExternal: false)
        return withExtendedLifetime((tensor, context)) { packedBytes(UnsafePointer(proto)) }
    }

    /// Writes one tensor as a TensorProto file, atomically.
    public func writeTensor(_ tensor: Tensor, name: String? = nil, to path: String) throws(ONNXError) {
        let bytes = encodeTensor(tensor, name: name)
        do throws(SystemError) {
            let writer = try AtomicFileWriter(destination: path)
            try writer.write(bytes)
            try writer.commit()
        } catch {
            throw ONNXError.writeFailed(file: path, reason: error.description)
        }
    }
}
