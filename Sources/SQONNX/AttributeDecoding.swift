import CProtobufC
import ONNXProto
import SQIR

/// AttributeProto.type values (ONNX `AttributeProto.AttributeType`).
enum AttributeKind: Int32 {
    case undefined = 0
    case float = 1, int = 2, string = 3, tensor = 4, graph = 5
    case floats = 6, ints = 7, strings = 8, tensors = 9, graphs = 10
    case sparseTensor = 11, sparseTensors = 12, typeProto = 13, typeProtos = 14
}

extension DecodeContext {
    /// Decodes one attribute. Kinds SQIR does not interpret (sparse tensors, type protos,
    /// kinds from newer ONNX versions) and attributes that a Swift value cannot hold exactly
    /// (non-UTF-8 strings, tensors of unsupported dtypes or with extra fields) become
    /// `.opaque` with the packed AttributeProto, so they are written back unchanged.
    func decodeAttribute(_ pointer: UnsafeMutablePointer<Onnx__AttributeProto>, scope: Scope,
                         nodeLocation: String) throws -> Attribute {
        let proto = pointer.pointee
        let name = string(proto.name)
        let location = "\(nodeLocation) attribute '\(name)'"
        let rawKind = (proto.has_type != 0) ? proto.type : 0
        let kind = AttributeKind(rawValue: rawKind).map { $0 == .undefined ? Self.inferredKind(proto) : $0 }
        func opaque() -> Attribute {
            finish(Attribute(name, .opaque(type: rawKind, packedAttribute: packedBytes(UnsafePointer(pointer)))), proto)
        }
        guard let kind, proto.base.n_unknown_fields == 0 else { return opaque() }

        let value: AttributeValue
        switch kind {
        case .float:
            value = .float(proto.f)
        case .int:
            value = .int(Int(proto.i))
        case .string:
            let bytes = byteArray(proto.s)
            guard let text = String(validating: bytes, as: UTF8.self) else { return opaque() }
            value = .string(text)
        case .floats:
            value = .floats(Array(array(proto.floats, proto.n_floats)))
        case .ints:
            value = .ints(array(proto.ints, proto.n_ints).map { Int($0) })
        case .strings:
            var texts: [String] = []
            for data in array(proto.strings, proto.n_strings) {
                guard let text = String(validating: byteArray(data), as: UTF8.self) else { return opaque() }
                texts.append(text)
            }
            value = .strings(texts)
        case .tensor:
            guard let tensorPointer = proto.t else {
                throw ONNXError.invalidModel(file: file, location: location, reason: "TENSOR attribute has no tensor")
            }
            guard let tensor = try attributeTensor(tensorPointer.pointee, location: location) else { return opaque() }
            value = .tensor(tensor)
        case .tensors:
            var tensors: [Tensor] = []
            for (index, tensorPointer) in messages(proto.tensors, proto.n_tensors).enumerated() {
                guard let tensor = try attributeTensor(tensorPointer.pointee, location: "\(location) tensor #\(index)") else { return opaque() }
                tensors.append(tensor)
            }
            value = .tensors(tensors)
        case .graph:
            guard let graphPointer = proto.g else {
                throw ONNXError.invalidModel(file: file, location: location, reason: "GRAPH attribute has no graph")
            }
            value = .graph(try decodeGraph(graphPointer.pointee, parent: scope, location: location))
        case .graphs:
            value = .graphs(try messages(proto.graphs, proto.n_graphs).map {
                try decodeGraph($0.pointee, parent: scope, location: location)
            })
        case .sparseTensor, .sparseTensors, .typeProto, .typeProtos, .undefined:
            return opaque()
        }
        return finish(Attribute(name, value), proto)
    }

    private func finish(_ attribute: Attribute, _ proto: Onnx__AttributeProto) -> Attribute {
        var attribute = attribute
        attribute.docString = string(proto.doc_string)
        attribute.refAttrName = optionalString(proto.ref_attr_name)
        return attribute
    }

    /// A tensor-valued attribute; nil when it must stay opaque (unsupported dtype, fields
    /// SQIR's `Tensor` cannot hold). Other problems with its data are errors.
    private func attributeTensor(_ proto: Onnx__TensorProto, location: String) throws -> Tensor? {
        guard proto.base.n_unknown_fields == 0 else { return nil }
        do {
            return try decodeTensor(proto, location: location)
        } catch ONNXError.unknownDType {
            return nil
        }
    }

    /// The kind of an attribute written without `type` (very old files): the field that is set.
    static func inferredKind(_ proto: Onnx__AttributeProto) -> AttributeKind {
        if (proto.has_f != 0) { return .float }
        if (proto.has_i != 0) { return .int }
        if (proto.has_s != 0) { return .string }
        if proto.t != nil { return .tensor }
        if proto.g != nil { return .graph }
        if proto.n_floats > 0 { return .floats }
        if proto.n_ints > 0 { return .ints }
        if proto.n_strings > 0 { return .strings }
        if proto.n_tensors > 0 { return .tensors }
        if proto.n_graphs > 0 { return .graphs }
        return .undefined
    }
}
