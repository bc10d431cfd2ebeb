import CProtobufC
import ONNXProto
import SQIR

/// Names visible in one graph, chained to the enclosing graph's scope (subgraphs may use
/// outer values by name; a local definition shadows an outer one).
final class Scope {
    let parent: Scope?
    var values: [String: Value] = [:]
    /// Index of each local node output's producer in the graph's node list.
    var producerIndex: [ObjectIdentifier: Int] = [:]
    /// The node being decoded in this graph (its subgraphs are decoded meanwhile).
    var currentNode = 0
    /// Set when a node uses a value produced by a later node: the graph needs sorting.
    var hasForwardReference = false

    init(parent: Scope?) { self.parent = parent }

    /// The innermost definition of `name`, noting uses that come before their producer.
    func lookup(_ name: String) -> Value? {
        var scope: Scope? = self
        while let current = scope {
            if let value = current.values[name] {
                if let index = current.producerIndex[ObjectIdentifier(value)], index >= current.currentNode {
                    current.hasForwardReference = true
                }
                return value
            }
            scope = current.parent
        }
        return nil
    }
}

extension DecodeContext {
    func decodeGraph(_ proto: Onnx__GraphProto, parent: Scope?, location: String) throws -> Graph {
        let graph = Graph(name: string(proto.name))
        graph.docString = string(proto.doc_string)
        graph.unknownFields = unknownFieldBytes(proto.base)
        let scope = Scope(parent: parent)
        let graphLocation = "graph '\(graph.name)'"

        for (index, tensorProto) in messages(proto.initializer, proto.n_initializer).enumerated() {
            let name = string(tensorProto.pointee.name)
            guard !name.isEmpty else {
                throw ONNXError.invalidModel(file: file, location: graphLocation, reason: "initializer #\(index) has no name")
            }
            let value = Value(name: name, constant: try decodeTensor(tensorProto.pointee, location: "initializer '\(name)'"))
            let unknown = unknownFieldBytes(tensorProto.pointee.base)
            if !unknown.isEmpty { value.updateONNXExtras { $0.tensorUnknownFields = unknown } }
            graph.initializers.append(value)
            if scope.values[name] == nil { scope.values[name] = value }
        }
        for (index, sparseProto) in messages(proto.sparse_initializer, proto.n_sparse_initializer).enumerated() {
            let name = string(sparseProto.pointee.values?.pointee.name)
            guard !name.isEmpty else {
                throw ONNXError.invalidModel(file: file, location: graphLocation, reason: "sparse initializer #\(index) has no name")
            }
            // Pack first: densifying adopts (and later frees) the values' raw_data buffer.
            let packed = packedBytes(UnsafePointer(sparseProto))
            let value = Value(name: name, constant: try densify(sparseProto.pointee, location: "sparse initializer '\(name)'"))
            if let storage = value.constant?.storage {
                value.updateONNXExtras { $0.sparseInitializer = (packed, ObjectIdentifier(storage)) }
            }
            graph.initializers.append(value)
            if scope.values[name] == nil { scope.values[name] = value }
        }
        for info in messages(proto.input, proto.n_input) {
            let name = string(info.pointee.name)
            let value: Value
            if let existing = scope.values[name], existing.isConstant {
                value = existing  // an initializer listed among the inputs (IR < 4 style)
            } else {
                value = Value(name: name)
                if scope.values[name] == nil { scope.values[name] = value }
            }
            try applyValueInfo(info.pointee, to: value)
            graph.inputs.append(value)
        }

        let nodeProtos = messages(proto.node, proto.n_node)
        var nodeOutputs: [[Value?]] = []
        nodeOutputs.reserveCapacity(nodeProtos.count)
        for (index, nodeProto) in nodeProtos.enumerated() {
            let outputs = array(nodeProto.pointee.output, nodeProto.pointee.n_output).map { field -> Value? in
                let name = string(field)
                guard !name.isEmpty else { return nil }
                let value = Value(name: name)
                if scope.values[name] == nil {
                    scope.values[name] = value
                    scope.producerIndex[ObjectIdentifier(value)] = index
                }
                return value
            }
            nodeOutputs.append(outputs)
        }
        var undefined: [String: Value] = [:]
        func resolve(_ name: String) -> Value {
            if let value = scope.lookup(name) { return value }
            if let value = undefined[name] { return value }
            let value = Value(name: name)  // left undefined: the verifier names it
            undefined[name] = value
            return value
        }
        for (index, nodeProto) in nodeProtos.enumerated() {
            scope.currentNode = index
            let node = try decodeNode(nodeProto.pointee, outputs: nodeOutputs[index], scope: scope, resolve: resolve)
            graph.append(node)
        }
        scope.currentNode = nodeProtos.count

        for info in messages(proto.output, proto.n_output) {
            let value = resolve(string(info.pointee.name))
            try applyValueInfo(info.pointee, to: value)
            graph.outputs.append(value)
        }
        for info in messages(proto.value_info, proto.n_value_info) {
            // value_info about names this graph does not define carries no information.
            guard let value = scope.values[string(info.pointee.name)] else { continue }
            try applyValueInfo(info.pointee, to: value)
        }
        if scope.hasForwardReference {
            do {
                try graph.sortTopologically()
            } catch let error as IRError {
                throw ONNXError(verifying: error, file: file)
            }
        }
        return graph
    }

    private func decodeNode(_ proto: Onnx__NodeProto, outputs: [Value?], scope: Scope,
                            resolve: (String) -> Value) throws -> Node {
        let opType = string(proto.op_type)
        let name = string(proto.name)
        let location = "node '\(name)' (\(opType))"
        guard !opType.isEmpty else {
            throw ONNXError.invalidModel(file: file, location: location, reason: "node has no op_type")
        }
        let inputs = array(proto.input, proto.n_input).map { field -> Value? in
            let inputName = string(field)
            return inputName.isEmpty ? nil : resolve(inputName)
        }
        var attributes: [Attribute] = []
        for attributeProto in messages(proto.attribute, proto.n_attribute) {
            attributes.append(try decodeAttribute(attributeProto, scope: scope, nodeLocation: location))
        }
        let node = Node(opType, domain: string(proto.domain), name: name, inputs: inputs, outputs: outputs, attributes: attributes)
        node.docString = string(proto.doc_string)
        node.unknownFields = unknownFieldBytes(proto.base)
        return node
    }

    /// Sets the type, doc string and extras a ValueInfoProto gives `value`.
    func applyValueInfo(_ info: Onnx__ValueInfoProto, to value: Value) throws {
        value.docString = string(info.doc_string)
        let unknown = unknownFieldBytes(info.base)
        let decoded = decodeType(info.type)
        if !value.isConstant { value.type = decoded.type }
        if !unknown.isEmpty || decoded.opaque != nil {
            value.updateONNXExtras { extras in
                extras.valueInfoUnknownFields = unknown
                extras.typeProto = decoded.opaque
                extras.decodedType = decoded.type
            }
        }
    }

    /// A TypeProto as a `TensorType`, plus its packed bytes when the TensorType does not say
    /// everything it says (so the encoder can write the original back).
    func decodeType(_ pointer: UnsafeMutablePointer<Onnx__TypeProto>?) -> (type: TensorType?, opaque: [UInt8]?) {
        guard let pointer else { return (nil, nil) }
        let proto = pointer.pointee
        var exact = proto.denotation == nil && proto.base.n_unknown_fields == 0
        var type: TensorType?
        if proto.value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE, let tensorPointer = proto.tensor_type {
            let tensorProto = tensorPointer.pointee
            exact = exact && tensorProto.base.n_unknown_fields == 0
            if let dtype = DType(rawValue: (tensorProto.has_elem_type != 0) ? tensorProto.elem_type : 0) {
                var dims: [Dim]?
                if let shape = tensorProto.shape?.pointee {
                    exact = exact && shape.base.n_unknown_fields == 0
                    dims = messages(shape.dim, shape.n_dim).map { dimPointer in
                        let dim = dimPointer.pointee
                        exact = exact && dim.denotation == nil && dim.base.n_unknown_fields == 0
                        switch dim.value_case {
                        case ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE:
                            if dim.dim_value >= 0 { return .known(Int(dim.dim_value)) }
                            exact = false
                            return .unknown
                        case ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM:
                            let param = string(dim.dim_param)
                            if !param.isEmpty { return .symbolic(param) }
                            exact = false
                            return .unknown
                        default:
                            return .unknown
                        }
                    }
                }
                type = TensorType(dtype, dims)
            } else {
                exact = false
            }
        } else {
            exact = false  // sequence, map, optional, sparse tensor, or an empty TypeProto
        }
        return (type, exact ? nil : packedBytes(UnsafePointer(pointer)))
    }
}
