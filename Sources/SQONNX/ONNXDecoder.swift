import CProtobufC
import ONNXProto
import SQIR

/// Reads ONNX files into SQIR models.
///
/// ```swift
/// let model = try ONNXDecoder().decode(file: "model.onnx")
/// ```
///
/// - The file is memory-mapped and unpacked by protobuf-c; tensor bytes are copied once
///   (by the unpacker, into 64-byte aligned blocks that the tensors then own).
/// - External data is memory-mapped and never read here (see `ExternalDataResolver`).
/// - Every failure is an `ONNXError` naming the file and, where there is one, the tensor,
///   node or value; nothing in a file can crash the decoder.
/// - With `options.verify` (the default) the graph is checked by SQIR's `Verifier`.
public struct ONNXDecoder: Sendable {
    public struct Options: Sendable {
        /// Run SQIR's `Verifier` on the decoded model (undefined values, cycles, ...).
        public var verify: Bool
        /// Largest tensor accepted, in bytes (dtype size × dims product). Larger or
        /// overflowing dims are refused before anything is allocated. Default 16 GiB.
        public var maxTensorBytes: Int
        /// Deepest message nesting accepted (model → graph → node → attribute → graph ...
        /// counts one per message). Default 64, enough for about 15 levels of subgraphs.
        public var maxNestingDepth: Int

        public init(verify: Bool = true, maxTensorBytes: Int = 16 << 30, maxNestingDepth: Int = 64) {
            self.verify = verify
            self.maxTensorBytes = maxTensorBytes
            self.maxNestingDepth = maxNestingDepth
        }
    }

    public var options: Options

    public init(options: Options = Options()) {
        self.options = options
    }

    /// Decodes the ONNX file at `path`. External data is looked up in the file's folder.
    public func decode(file path: String) throws(ONNXError) -> Model {
        let mapping = try Self.map(path)
        let model = try decode(mapping.bytes, file: path, modelDirectory: Self.directory(of: path))
        model.sourcePath = path
        return model
    }

    /// Decodes a serialized model held in memory. `fileName` names it in errors; external
    /// data is only allowed when `modelDirectory` says where to find it.
    public func decode(bytes: [UInt8], fileName: String = "<memory>", modelDirectory: String? = nil) throws(ONNXError) -> Model {
        let result: Result<Model, ONNXError> = bytes.withUnsafeBytes { raw in
            do throws(ONNXError) {
                return .success(try decode(raw, file: fileName, modelDirectory: modelDirectory))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// Maps the file at `path` for reading.
    static func map(_ path: String) throws(ONNXError) -> MappedFile {
        do {
            return try MappedFile(path: path, populate: true)
        } catch {
            throw ONNXError.unreadable(file: path, reason: error.description)
        }
    }

    /// Checks the wire format, then unpacks `bytes` as the message `unpack` parses.
    func unpack<Message>(_ bytes: UnsafeRawBufferPointer, root: WireMessage, file: String,
                         _ unpack: (UnsafeMutablePointer<ProtobufCAllocator>?, Int, UnsafePointer<UInt8>?) -> UnsafeMutablePointer<Message>?
    ) throws(ONNXError) -> Unpacked<Message> {
        guard bytes.count > 0 else { throw ONNXError.emptyFile(file: file) }
        switch scanWireFormat(bytes, root: root, maxDepth: options.maxNestingDepth) {
        case .malformed(let reason)?: throw ONNXError.malformed(file: file, reason: reason)
        case .tooDeep?: throw ONNXError.nestingTooDeep(file: file, limit: options.maxNestingDepth)
        case nil: break
        }
        guard let unpacked = Unpacked(bytes: bytes, unpack) else {
            throw ONNXError.malformed(file: file, reason: "the protobuf parser rejected it (a field has the wrong type or invalid contents)")
        }
        return unpacked
    }

    private func decode(_ bytes: UnsafeRawBufferPointer, file: String, modelDirectory: String?) throws(ONNXError) -> Model {
        let unpacked = try unpack(bytes, root: .model, file: file, onnx__model_proto__unpack)
        let context = DecodeContext(file: file, options: options, allocator: unpacked.allocator, modelDirectory: modelDirectory)
        let model: Model
        do {
            model = try withExtendedLifetime(unpacked) { try context.decodeModel(unpacked.message.pointee) }
        } catch let error as ONNXError {
            throw error
        } catch {
            throw ONNXError.invalidModel(file: file, location: "model", reason: "\(error)")
        }
        if options.verify {
            do {
                try Verifier(file: file).verify(model)
            } catch let error as IRError {
                throw ONNXError(verifying: error, file: file)
            } catch {
                throw ONNXError.verification(file: file, location: nil, reason: "\(error)")
            }
        }
        return model
    }

    /// The folder holding `path` ("." for a bare file name).
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let folder = String(path[..<slash])
        return folder.isEmpty ? "/" : folder
    }
}

extension DecodeContext {
    func decodeModel(_ proto: Onnx__ModelProto) throws -> Model {
        guard let graphPointer = proto.graph else {
            throw ONNXError.invalidModel(file: file, location: "model", reason: "the model has no graph")
        }
        let graph = try decodeGraph(graphPointer.pointee, parent: nil, location: "graph")
        let opsets = messages(proto.opset_import, proto.n_opset_import).map {
            OpsetImport(domain: string($0.pointee.domain), version: Int($0.pointee.version))
        }
        let model = Model(graph: graph, irVersion: Int(proto.ir_version), opsetImports: opsets)
        model.producerName = string(proto.producer_name)
        model.producerVersion = string(proto.producer_version)
        model.domain = string(proto.domain)
        model.modelVersion = Int(proto.model_version)
        model.docString = string(proto.doc_string)
        model.metadata = messages(proto.metadata_props, proto.n_metadata_props).map {
            (key: string($0.pointee.key), value: string($0.pointee.value))
        }
        model.functions = messages(proto.functions, proto.n_functions).map { packedBytes(UnsafePointer($0)) }
        model.unknownFields = unknownFieldBytes(proto.base)
        return model
    }
}
