import CProtobufC
import ONNXProto
import SQIR

/// Writes SQIR models as standard ONNX files.
///
/// ```swift
/// try ONNXEncoder().write(model, to: "out.onnx")
/// try ONNXEncoder(options: .init(externalData: true)).write(model, to: "out.onnx")  // + out.onnx.data
/// ```
///
/// - Initializers are written as little-endian `raw_data`, straight from tensor storage.
/// - External data (on request, or automatically when the model would pass protobuf's
///   2 GiB limit): initializers of at least `externalDataThreshold` bytes go to
///   `<output file name>.data` beside the output, at 64-byte aligned offsets (4 KiB for
///   tensors of 1 MiB or more), referenced by relative `location`, `offset`, `length`.
/// - Writes are atomic (`AtomicFileWriter`): on any error the previous output is untouched
///   and no temporary file is left. The data file is committed just before the model file.
/// - Writing over the model's own input file, or over a file its tensors are mapped from,
///   is refused (`ONNXError.outputIsInput`).
public struct ONNXEncoder: Sendable {
    public struct Options: Sendable {
        /// Store initializers in `<output>.data` instead of inside the model file.
        public var externalData: Bool
        /// Initializers smaller than this stay inside the model file even with external data.
        public var externalDataThreshold: Int
        /// Largest model file written inline; above it external data is used automatically.
        /// Default: protobuf's limit, 2 GiB − 1.
        public var maxInlineBytes: Int

        public init(externalData: Bool = false, externalDataThreshold: Int = 1024, maxInlineBytes: Int = Int(Int32.max)) {
            self.externalData = externalData
            self.externalDataThreshold = externalDataThreshold
            self.maxInlineBytes = maxInlineBytes
        }
    }

    public var options: Options

    public init(options: Options = Options()) {
        self.options = options
    }

    /// The model serialized in memory, all tensors inline.
    public func encode(_ model: Model) throws(ONNXError) -> [UInt8] {
        let name = model.sourcePath ?? "<memory>"
        let context = EncodeContext(file: name, externalLocation: nil, externalThreshold: .max)
        let proto = try build(model, context)
        let size = onnx__model_proto__get_packed_size(proto)
        guard size <= options.maxInlineBytes else {
            throw ONNXError.writeFailed(file: name, reason: "the model needs \(size) bytes, more than protobuf's 2 GiB limit; write it to a file with external data")
        }
        return withExtendedLifetime((model, context)) {
            [UInt8](unsafeUninitializedCapacity: max(size, 1)) { buffer, initialized in
                initialized = onnx__model_proto__pack(proto, buffer.baseAddress)
            }
        }
    }

    /// Writes the model to `path` (and `path.data` when external data is used).
    public func write(_ model: Model, to path: String) throws(ONNXError) {
        let dataPath = path + ".data"
        let backing = Self.backingFiles(of: model)
        if Self.sameFile(path, model.sourcePath) || backing.contains(where: { Self.sameFile(path, $0) }) {
            throw ONNXError.outputIsInput(file: path)
        }
        var context = EncodeContext(file: path, externalLocation: nil, externalThreshold: .max)
        var proto = try build(model, context)
        if options.externalData || onnx__model_proto__get_packed_size(proto) > options.maxInlineBytes {
            if Self.sameFile(dataPath, model.sourcePath) || backing.contains(where: { Self.sameFile(dataPath, $0) }) {
                throw ONNXError.outputIsInput(file: dataPath)
            }
            context = EncodeContext(file: path, externalLocation: AtomicFileWriter.baseName(dataPath),
                                    externalThreshold: options.externalDataThreshold)
            proto = try build(model, context)
            let size = onnx__model_proto__get_packed_size(proto)
            guard size <= options.maxInlineBytes else {
                throw ONNXError.writeFailed(file: path, reason: "the model needs \(size) bytes even with its initializers stored externally, more than protobuf's 2 GiB limit")
            }
        }
        try withExtendedLifetime((model, context)) { () throws(ONNXError) in
            do throws(SystemError) {
                var dataSink: FileSink?
                if !context.externalTensors.isEmpty {
                    let sink = FileSink(writer: try AtomicFileWriter(destination: dataPath))
                    context.writeExternalData(to: sink)
                    dataSink = sink
                }
                let modelSink = FileSink(writer: try AtomicFileWriter(destination: path))
                packModel(proto, to: modelSink)
                modelSink.flush()
                if let error = modelSink.error { throw error }
                try dataSink?.commit()
                try modelSink.commit()
            } catch {
                throw ONNXError.writeFailed(file: path, reason: error.description)
            }
        }
    }

    private func build(_ model: Model, _ context: EncodeContext) throws(ONNXError) -> UnsafeMutablePointer<Onnx__ModelProto> {
        do {
            return try context.encodeModel(model)
        } catch let error as ONNXError {
            throw error
        } catch {
            throw ONNXError.invalidModel(file: context.file, location: "model", reason: "\(error)")
        }
    }

    /// True when `path` and `other` name the same existing file (same inode, or the same
    /// resolved path).
    static func sameFile(_ path: String, _ other: String?) -> Bool {
        guard let other else { return false }
        if let a = FileIdentity.of(path), let b = FileIdentity.of(other), a == b { return true }
        if let a = resolvedRealPath(path), let b = resolvedRealPath(other) { return a == b }
        return false
    }

    /// Files whose mapped bytes back tensors of `model` (its external data).
    static func backingFiles(of model: Model) -> [String] {
        var identities = Set<ObjectIdentifier>()
        var paths: [String] = []
        func visit(_ tensor: Tensor) {
            let owner = tensor.storage.owner
            if let mapping = (owner as? MappedRange)?.file ?? owner as? MappedFile,
               identities.insert(ObjectIdentifier(mapping)).inserted {
                paths.append(mapping.path)
            }
        }
        func visit(_ graph: Graph) {
            for value in graph.initializers { if let tensor = value.constant { visit(tensor) } }
            for node in graph.nodes {
                for attribute in node.attributes {
                    switch attribute.value {
                    case .tensor(let tensor): visit(tensor)
                    case .tensors(let tensors): tensors.forEach(visit)
                    case .graph(let subgraph): visit(subgraph)
                    case .graphs(let subgraphs): subgraphs.forEach(visit)
                    default: break
                    }
                }
            }
        }
        visit(model.graph)
        return paths
    }
}

/// Streams the packed model into `sink` without building it in memory first.
private func packModel(_ proto: UnsafeMutablePointer<Onnx__ModelProto>, to sink: FileSink) {
    // A ProtobufCBuffer followed by a pointer to the sink: the callback finds the sink there.
    let recordSize = MemoryLayout<ProtobufCBuffer>.stride
    let record = UnsafeMutableRawPointer.allocate(byteCount: recordSize + MemoryLayout<UnsafeRawPointer>.stride, alignment: 16)
    defer { record.deallocate() }
    record.initializeMemory(as: ProtobufCBuffer.self, repeating: ProtobufCBuffer(append: { buffer, length, data in
        guard let buffer, let data else { return }
        let sinkPointer = UnsafeRawPointer(buffer).load(fromByteOffset: MemoryLayout<ProtobufCBuffer>.stride, as: UnsafeRawPointer.self)
        Unmanaged<FileSink>.fromOpaque(sinkPointer).takeUnretainedValue().append(UnsafeRawBufferPointer(start: data, count: length))
    }), count: 1)
    record.storeBytes(of: UnsafeRawPointer(Unmanaged.passUnretained(sink).toOpaque()), toByteOffset: recordSize, as: UnsafeRawPointer.self)
    withExtendedLifetime(sink) {
        _ = onnx__model_proto__pack_to_buffer(proto, record.assumingMemoryBound(to: ProtobufCBuffer.self))
    }
}
