import SQIR

/// bfloat16 layers are quantized in float32 between Casts:
///
///     x (bf16) ─ Cast(float) ─ Q ─ DQ ─┐
///                                      MatMul (float32) ─ Cast(bf16) ─ … (the old readers)
///     W (int8) ─ DQ (float32 scale) ───┘
///
/// Why: onnxruntime 1.32's CPU provider has no bfloat16 QuantizeLinear / DequantizeLinear (nor
/// MatMul), so the quantized layers load there only in this form; and a bfloat16
/// DequantizeLinear would round every q·Δ to 8 significant bits (q alone needs 7), an error
/// as large as int8's own. float16 keeps the plain form: onnxruntime runs float16 Q/DQ, and
/// float16's 11 bits hold q·Δ to 2⁻¹¹. sqopt's int8 lowering matches the float32 island as
/// it matches a float32 model.
struct Float32Islands {
    let graph: Graph
    private var casts: [ObjectIdentifier: Value] = [:]

    init(graph: Graph) {
        self.graph = graph
    }

    static func needed(for type: DType) -> Bool { type == .bfloat16 }

    /// `Cast(value, to=float)`, one per value, inserted before `anchor`.
    mutating func widened(_ value: Value, before anchor: Node) -> Value {
        if let existing = casts[ObjectIdentifier(value)] { return existing }
        let cast = graph.makeNode("Cast", name: value.name + "/Cast_float32", inputs: [value],
                                  attributes: [Attribute("to", .int(Int(DType.float.rawValue)))], before: anchor)
        guard let out = cast.output(0) else { return value }
        out.type = value.type.map { TensorType(.float, $0.dims) }
        casts[ObjectIdentifier(value)] = out
        return out
    }

    /// Makes `node` (a MatMul/Gemm whose operands are now float32) compute float32 and gives its
    /// readers `Cast(output, to=type)` instead; a Gemm's bias C is widened too. A graph output
    /// keeps its name (the Cast's output takes it).
    mutating func close(_ node: Node, narrowingTo type: DType) {
        if node.isOp("Gemm"), let c = node.input(2) {
            if let t = c.constant, let values = t.floatElements(), t.dtype != .float {
                node.setInput(2, graph.addInitializer(Tensor(shape: t.shape, values: values), name: c.name + "_float32"))
                graph.dropReplacedInitializers([c])
            } else if c.constant == nil {
                node.setInput(2, widened(c, before: node))
            }
        }
        guard let out = node.output(0) else { return }
        let readers = out.uses
        let narrowed = Value(name: graph.uniqueName(out.name + "_" + type.shortName), type: out.type)
        let cast = Node("Cast", name: graph.uniqueNodeName(node.name + "/Cast_" + type.shortName), inputs: [out],
                        outputs: [narrowed], attributes: [Attribute("to", .int(Int(type.rawValue)))])
        graph.insert(cast, after: node)
        for use in readers { use.node.setInput(use.index, narrowed) }
        for i in graph.outputs.indices where graph.outputs[i] === out {
            graph.outputs[i] = narrowed
            let name = out.name
            out.name = graph.uniqueName(name + "_float32")
            narrowed.name = name
        }
        out.type = out.type.map { TensorType(.float, $0.dims) }
    }
}
