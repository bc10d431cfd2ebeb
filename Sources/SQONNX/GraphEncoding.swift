import CProtobufC
import ONNXProto
import SQIR

extension EncodeContext {
    func encodeModel(_ model: Model) throws -> UnsafeMutablePointer<Onnx__ModelProto> {
        let proto: UnsafeMutablePointer<Onnx__ModelProto> = arena.message(onnx__model_proto__init)
        proto.pointee.has_ir_version = 1
        proto.pointee.ir_version = Int64(model.irVersion)
        proto.pointee.producer_name = arena.optionalCString(model.producerName)
        proto.pointee.producer_version = arena.optionalCString(model.producerVersion)
        proto.pointee.domain = arena.optionalCString(model.domain)
        if model.modelVersion != 0 {
            proto.pointee.has_model_version = 1
            proto.pointee.model_version = Int64(model.modelVersion)
        }
        proto.pointee.doc_string = arena.optionalCString(model.docString)
        proto.pointee.graph = try encodeGraph(model.graph)
        proto.pointee.n_opset_import = model.opsetImports.count
        proto.pointee.opset_import = arena.pointers(model.opsetImports.map { opset in
            let entry: UnsafeMutablePointer<Onnx__OperatorSetIdProto> = arena.message(onnx__operator_set_id_proto__init)
            entry.pointee.domain = arena.cString(opset.domain)
            entry.pointee.has_version = 1
            entry.pointee.version = Int64(opset.version)
            return entry
        })
        proto.pointee.n_metadata_props = model.metadata.count
        proto.pointee.metadata_props = arena.pointers(model.metadata.map { stringEntry($0.key, $0.value) })
        let functions = try model.functions.enumerated().map { index, bytes in
            try unpackOpaque(bytes, what: "FunctionProto", location: "model function #\(index)", onnx__function_proto__unpack)
        }
        proto.pointee.n_functions = functions.count
        proto.pointee.functions = arena.pointers(functions)
        try setUnknownFields(model.unknownFields, on: &proto.pointee.base, location: "model")
        return proto
    }

    private func stringEntry(_ key: String, _ value: String) -> UnsafeMutablePointer<Onnx__StringStringEntryProto> {
        let entry: UnsafeMutablePointer<Onnx__StringStringEntryProto> = arena.message(onnx__string_string_entry_proto__init)
        entry.pointee.key = arena.cString(key)
        entry.pointee.value = arena.cString(value)
        return entry
    }

    func encodeGraph(_ graph: Graph) throws -> UnsafeMutablePointer<Onnx__GraphProto> {
        let proto: UnsafeMutablePointer<Onnx__GraphProto> = arena.message(onnx__graph_proto__init)
        let location = "graph '\(graph.name)'"
        proto.pointee.name = arena.optionalCString(graph.name)
        proto.pointee.doc_string = arena.optionalCString(graph.docString)

        var dense: [UnsafeMutablePointer<Onnx__TensorProto>] = []
        var sparse: [UnsafeMutablePointer<Onnx__SparseTensorProto>] = []
        for value in graph.initializers {
            guard let tensor = value.constant else {
                throw ONNXError.invalidModel(file: file, location: "initializer '\(value.name)'", reason: "initializer has no data")
            }
            let extras = value.onnxExtras
            if let original = extras?.sparseInitializer, original.storage == ObjectIdentifier(tensor.storage) {
                sparse.append(try unpackOpaque(original.packed, what: "SparseTensorProto",
                                               location: "sparse initializer '\(value.name)'", onnx__sparse_tensor_proto__unpack))
                continue
            }
            let tensorProto = encodeTensor(tensor, name: value.name, allowExternal: true)
            if let unknown = extras?.tensorUnknownFields {
                try setUnknownFields(unknown, on: &tensorProto.pointee.base, location: "initializer '\(value.name)'")
            }
            dense.append(tensorProto)
        }
        for (index, bytes) in graph.sparseInitializers.enumerated() {
            sparse.append(try unpackOpaque(bytes, what: "SparseTensorProto", location: "\(location) sparse initializer #\(index)",
                                           onnx__sparse_tensor_proto__unpack))
        }
        proto.pointee.n_initializer = dense.count
        proto.pointee.initializer = arena.pointers(dense)
        proto.pointee.n_sparse_initializer = sparse.count
        proto.pointee.sparse_initializer = arena.pointers(sparse)

        let inputs = try graph.inputs.map { try encodeValueInfo($0) }
        proto.pointee.n_input = inputs.count
        proto.pointee.input = arena.pointers(inputs)
        let nodes = try graph.nodes.map { try encodeNode($0) }
        proto.pointee.n_node = nodes.count
        proto.pointee.node = arena.pointers(nodes)
        let outputs = try graph.outputs.map { try encodeValueInfo($0) }
        proto.pointee.n_output = outputs.count
        proto.pointee.output = arena.pointers(outputs)

        // value_info: every typed intermediate value (node outputs that are not graph outputs).
        let outputIDs = Set(graph.outputs.map(ObjectIdentifier.init))
        var infos: [UnsafeMutablePointer<Onnx__ValueInfoProto>] = []
        for node in graph.nodes {
            for case let value? in node.outputs where !outputIDs.contains(ObjectIdentifier(value)) {
                let extras = value.onnxExtras
                guard value.type != nil || extras != nil || !value.docString.isEmpty else { continue }
                infos.append(try encodeValueInfo(value))
            }
        }
        proto.pointee.n_value_info = infos.count
        proto.pointee.value_info = arena.pointers(infos)
        try setUnknownFields(graph.unknownFields, on: &proto.pointee.base, location: location)
        return proto
    }

    private func encodeNode(_ node: Node) throws -> UnsafeMutablePointer<Onnx__NodeProto> {
        let proto: UnsafeMutablePointer<Onnx__NodeProto> = arena.message(onnx__node_proto__init)
        let location = IRError.describe(node)
        proto.pointee.n_input = node.inputs.count
        proto.pointee.input = arena.cStrings(node.inputs.map { $0?.name ?? "" })
        proto.pointee.n_output = node.outputs.count
        proto.pointee.output = arena.cStrings(node.outputs.map { $0?.name ?? "" })
        proto.pointee.name = arena.optionalCString(node.name)
        proto.pointee.op_type = arena.cString(node.opType)
        proto.pointee.domain = arena.optionalCString(node.domain)
        proto.pointee.doc_string = arena.optionalCString(node.docString)
        let attributes = try node.attributes.map { try encodeAttribute($0, location: location) }
        proto.pointee.n_attribute = attributes.count
        proto.pointee.attribute = arena.pointers(attributes)
        try setUnknownFields(node.unknownFields, on: &proto.pointee.base, location: location)
        return proto
    }

    private func encodeAttribute(_ attribute: Attribute, location: String) throws -> UnsafeMutablePointer<Onnx__AttributeProto> {
        let proto: UnsafeMutablePointer<Onnx__AttributeProto> = arena.message(onnx__attribute_proto__init)
        let kind: AttributeKind
        switch attribute.value {
        case .float(let value):
            kind = .float
            proto.pointee.has_f = 1
            proto.pointee.f = value
        case .int(let value):
            kind = .int
            proto.pointee.has_i = 1
            proto.pointee.i = Int64(value)
        case .string(let value):
            kind = .string
            proto.pointee.has_s = 1
            proto.pointee.s = arena.binary(Array(value.utf8))
        case .tensor(let tensor):
            kind = .tensor
            proto.pointee.t = encodeTensor(tensor, name: "", allowExternal: false)
        case .graph(let graph):
            kind = .graph
            proto.pointee.g = try encodeGraph(graph)
        case .floats(let values):
            kind = .floats
            proto.pointee.n_floats = values.count
            proto.pointee.floats = arena.array(values)
        case .ints(let values):
            kind = .ints
            proto.pointee.n_ints = values.count
            proto.pointee.ints = arena.array(values.map { Int64($0) })
        case .strings(let values):
            kind = .strings
            proto.pointee.n_strings = values.count
            proto.pointee.strings = arena.array(values.map { arena.binary(Array($0.utf8)) })
        case .tensors(let tensors):
            kind = .tensors
            proto.pointee.n_tensors = tensors.count
            proto.pointee.tensors = arena.pointers(tensors.map { encodeTensor($0, name: "", allowExternal: false) })
        case .graphs(let graphs):
            kind = .graphs
            proto.pointee.n_graphs = graphs.count
            proto.pointee.graphs = arena.pointers(try graphs.map { try encodeGraph($0) })
        case .opaque(_, let packed):
            // Written as saved; name, doc string and reference name follow the IR.
            let saved = try unpackOpaque(packed, what: "AttributeProto", location: "\(location) attribute '\(attribute.name)'",
                                         onnx__attribute_proto__unpack)
            proto.pointee = saved.pointee
            proto.pointee.name = arena.cString(attribute.name)
            proto.pointee.doc_string = arena.optionalCString(attribute.docString)
            proto.pointee.ref_attr_name = attribute.refAttrName.map { arena.cString($0) }
            return proto
        }
        proto.pointee.name = arena.cString(attribute.name)
        proto.pointee.has_type = 1
        proto.pointee.type = kind.rawValue
        proto.pointee.doc_string = arena.optionalCString(attribute.docString)
        proto.pointee.ref_attr_name = attribute.refAttrName.map { arena.cString($0) }
        return proto
    }

    private func encodeValueInfo(_ value: Value) throws -> UnsafeMutablePointer<Onnx__ValueInfoProto> {
        let proto: UnsafeMutablePointer<Onnx__ValueInfoProto> = arena.message(onnx__value_info_proto__init)
        let location = "value '\(value.name)'"
        proto.pointee.name = arena.cString(value.name)
        proto.pointee.doc_string = arena.optionalCString(value.docString)
        let extras = value.onnxExtras
        if let saved = extras?.typeProto, extras?.decodedType == value.type {
            proto.pointee.type = try unpackOpaque(saved, what: "TypeProto", location: location, onnx__type_proto__unpack)
        } else if let type = value.type {
            proto.pointee.type = encodeType(type)
        }
        if let unknown = extras?.valueInfoUnknownFields {
            try setUnknownFields(unknown, on: &proto.pointee.base, location: location)
        }
        return proto
    }

    private func encodeType(_ type: TensorType) -> UnsafeMutablePointer<Onnx__TypeProto> {
        let proto: UnsafeMutablePointer<Onnx__TypeProto> = arena.message(onnx__type_proto__init)
        let tensor: UnsafeMutablePointer<Onnx__TypeProto__Tensor> = arena.message(onnx__type_proto__tensor__init)
        tensor.pointee.has_elem_type = 1
        tensor.pointee.elem_type = type.dtype.rawValue
        if let dims = type.dims {
            let shape: UnsafeMutablePointer<Onnx__TensorShapeProto> = arena.message(onnx__tensor_shape_proto__init)
            shape.pointee.n_dim = dims.count
            shape.pointee.dim = arena.pointers(dims.map { dim in
                let entry: UnsafeMutablePointer<Onnx__TensorShapeProto__Dimension> = arena.message(onnx__tensor_shape_proto__dimension__init)
                switch dim {
                case .known(let size):
                    entry.pointee.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE
                    entry.pointee.dim_value = Int64(size)
                case .symbolic(let name):
                    entry.pointee.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM
                    entry.pointee.dim_param = arena.cString(name)
                case .unknown:
                    break
                }
                return entry
            })
            tensor.pointee.shape = shape
        }
        proto.pointee.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE
        proto.pointee.tensor_type = tensor
        return proto
    }
}
