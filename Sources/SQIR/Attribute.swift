/// A node attribute value, one case per ONNX `AttributeProto.AttributeType`.
public enum AttributeValue {
    case float(Float)
    case int(Int)
    case string(String)
    case tensor(Tensor)
    case graph(Graph)
    case floats([Float])
    case ints([Int])
    case strings([String])
    case tensors([Tensor])
    case graphs([Graph])
    /// Kinds sqopt does not interpret (sparse tensors, type protos), kept as the packed
    /// bytes of the whole AttributeProto so they survive a round trip.
    case opaque(type: Int32, packedAttribute: [UInt8])
}

/// A named attribute. `refAttrName` is set inside function bodies that refer to the
/// caller's attribute.
public struct Attribute {
    public var name: String
    public var value: AttributeValue
    public var docString: String = ""
    public var refAttrName: String? = nil

    public init(_ name: String, _ value: AttributeValue) {
        self.name = name
        self.value = value
    }

    public var int: Int? { if case .int(let v) = value { return v } else { return nil } }
    public var float: Float? {
        switch value {
        case .float(let v): return v
        case .int(let v): return Float(v)
        default: return nil
        }
    }
    public var string: String? { if case .string(let v) = value { return v } else { return nil } }
    public var ints: [Int]? { if case .ints(let v) = value { return v } else { return nil } }
    public var floats: [Float]? { if case .floats(let v) = value { return v } else { return nil } }
    public var tensor: Tensor? { if case .tensor(let v) = value { return v } else { return nil } }
    public var graph: Graph? { if case .graph(let v) = value { return v } else { return nil } }
}
