import SQIR
import SQKernels

/// Elementwise chains the plan runs as one vector kernel (SQKernels vmath.c) instead of a
/// pass over memory per node:
///
///     GELU (BERT export):  Mul(Mul(x, Add(Erf(Div(x, √2)), 1)), 0.5)      ->  gelu(x)
///     SiLU (Llama export): Mul(x, Sigmoid(x))                              ->  silu(x)
///     attention scores:    Softmax(Add(Div(s, c), mask), axis = -1)        ->  one pass per row
///     masked attention:    MatMul(Softmax(Add(Div(MatMul(q, kᵀ), c), mask)), v)
///                          -> `MaskedAttentionKernel`, which skips the masked-out columns
///                          (and writes Transpose(·, [0, 2, 1, 3]) of it when that follows)
///     rotary embedding:    Add(Mul(x, cos), Mul(Concat(Neg(Slice(x)), Slice(x)), sin)) -> one
///                          pass (LlamaFusions.swift), x's Transpose in front absorbed
///     SwiGLU:              Mul(Mul(g, Sigmoid(g)), u)                      ->  silu(g)·u
///     RMSNorm:             Mul(w, Mul(x, Div(1, Sqrt(Add(ReduceMean(Pow(x, 2)), ε)))))  ->  one
///                          pass per row (the nodes' bits)
///
/// Operands of Add and Mul may come in either order; the constants are float32 scalars
/// (initializers or Constant nodes) equal to √2 (within 1e-6), 1 and 0.5. Every
/// intermediate value must be read only by the chain and be no graph output, so nothing
/// observable disappears. GELU and SiLU differ from the node-by-node result by float
/// rounding only (the same formula, evaluated once); the softmax chain computes the same
/// operations as its nodes (x / c + mask rounded twice, then the same softmax), so the same
/// bits. The softmax chain needs opset ≥ 13 (Softmax over one axis) and c a float32 scalar.
struct ElementwiseFusion {
    typealias Fusion = FusedStep

    private(set) var absorbed: Set<ObjectIdentifier> = []
    private var fusions: [ObjectIdentifier: Fusion] = [:]
    /// The GELU and SiLU chains: root, op, input and every node of the chain (root included),
    /// for the lowering to join them to the int8 product that computes their input.
    private(set) var activations: [(root: ObjectIdentifier, op: sq_vmath_op, input: Value, members: Set<ObjectIdentifier>)] = []

    /// `taken`: nodes another fusion (the int8 lowering) already owns; `observable`: value
    /// names that must stay observable (a chain computing one of them is not fused).
    init(graph: Graph, live: Set<ObjectIdentifier>, taken: Set<ObjectIdentifier>, observable: Set<String> = [],
         opset: Int = 13) {
        var outputs = Set(graph.outputs.map(ObjectIdentifier.init))
        for node in graph.nodes { for case let v? in node.outputs where observable.contains(v.name) { outputs.insert(ObjectIdentifier(v)) } }
        // Whole attention blocks first (their softmax would otherwise be fused on its own), with
        // the transpose after them when there is one; then every node from the graph's end, so
        // a chain's last node claims the chain before a shorter chain inside it (SwiGLU before
        // its SiLU).
        let attention = opset >= 13 ? graph.nodes.filter { $0.isOp("Transpose") } + graph.nodes.filter { $0.isOp("MatMul") } : []
        for node in attention + graph.nodes.reversed() where live.contains(ObjectIdentifier(node))
            && (node.isOp("Mul") || node.isOp("Softmax") || node.isOp("MatMul") || node.isOp("Add") || node.isOp("Transpose")) {
            guard !taken.contains(ObjectIdentifier(node)), fusions[ObjectIdentifier(node)] == nil,
                  !absorbed.contains(ObjectIdentifier(node)) else { continue }
            let match = node.isOp("MatMul") || node.isOp("Transpose") ? Self.maskedAttention(node, outputs)
                : node.isOp("Softmax") ? (opset >= 13 ? Self.scaledSoftmax(node, outputs) : nil)
                : node.isOp("Add") ? Self.rotary(node, outputs)
                : Self.swiglu(node, outputs) ?? Self.rmsNorm(node, outputs) ?? Self.gelu(node, outputs) ?? Self.silu(node, outputs)
            guard let (fusion, inner) = match,
                  inner.allSatisfy({ live.contains(ObjectIdentifier($0)) && !taken.contains(ObjectIdentifier($0)) }),
                  inner.allSatisfy({ !absorbed.contains(ObjectIdentifier($0)) && fusions[ObjectIdentifier($0)] == nil })
            else { continue }
            fusions[ObjectIdentifier(node)] = fusion
            for n in inner { absorbed.insert(ObjectIdentifier(n)) }
            if let activation = fusion.kernel as? FusedActivationKernel, let input = fusion.inputs.first ?? nil {
                activations.append((ObjectIdentifier(node), activation.op, input,
                                    Set(inner.map(ObjectIdentifier.init) + [ObjectIdentifier(node)])))
            }
        }
    }

    func fusion(for node: Node) -> Fusion? { fusions[ObjectIdentifier(node)] }

    // MARK: patterns

    /// Mul(Mul(x, Add(Erf(Div(x, √2)), 1)), 0.5), Mul and Add operands in either order.
    private static func gelu(_ root: Node, _ outputs: Set<ObjectIdentifier>) -> (Fusion, [Node])? {
        guard let (product, _) = split(root, constant: 0.5), let outer = private1(product, outputs),
              outer.isOp("Mul"), outer.inputs.count == 2 else { return nil }
        for side in 0..<2 {
            guard let x = outer.input(side), let sumValue = outer.input(1 - side),
                  let sum = private1(sumValue, outputs), sum.isOp("Add"),
                  let (erfValue, _) = split(sum, constant: 1), let erf = private1(erfValue, outputs), erf.isOp("Erf"),
                  let scaledValue = erf.input(0), let div = private1(scaledValue, outputs), div.isOp("Div"),
                  div.input(0) === x, let c = div.input(1).flatMap(scalar), abs(c - 2.0.squareRoot()) < 1e-6 else { continue }
            return (Fusion(kernel: FusedActivationKernel(op: SQ_VM_GELU), inputs: [x], kind: "Gelu (fused)"), [outer, sum, erf, div])
        }
        return nil
    }

    /// Mul(x, Sigmoid(x)) in either order.
    private static func silu(_ root: Node, _ outputs: Set<ObjectIdentifier>) -> (Fusion, [Node])? {
        guard root.inputs.count == 2 else { return nil }
        for side in 0..<2 {
            guard let x = root.input(side), let sValue = root.input(1 - side),
                  let sigmoid = private1(sValue, outputs), sigmoid.isOp("Sigmoid"), sigmoid.input(0) === x else { continue }
            return (Fusion(kernel: FusedActivationKernel(op: SQ_VM_SILU), inputs: [x], kind: "SiLU (fused)"), [sigmoid])
        }
        return nil
    }

    /// Softmax(Add(Div(s, c), mask)) over the last axis, Add operands in either order.
    private static func scaledSoftmax(_ root: Node, _ outputs: Set<ObjectIdentifier>) -> (Fusion, [Node])? {
        guard (root.int("axis") ?? -1) == -1, let sumValue = root.input(0), let add = private1(sumValue, outputs),
              add.isOp("Add"), add.inputs.count == 2 else { return nil }
        for side in 0..<2 {
            guard let scaledValue = add.input(side), let mask = add.input(1 - side),
                  let div = private1(scaledValue, outputs), div.isOp("Div"), let s = div.input(0),
                  let c = div.input(1).flatMap(scalar) else { continue }
            let kernel = ScaledSoftmaxKernel(divisor: Float(c))
            return (Fusion(kernel: kernel, inputs: [s, mask], kind: "Softmax (scaled, masked)"), [add, div])
        }
        return nil
    }

    /// MatMul(Softmax(Add(Div(MatMul(q, kᵀ), c), mask)), v): the scaled softmax's chain with
    /// the products on both sides, every intermediate private.
    /// As the root, `Transpose(perm = [0, 2, 1, 3])` of the last MatMul, read only by it: the
    /// kernel then writes its output in the transposed layout.
    private static func maskedAttention(_ root: Node, _ outputs: Set<ObjectIdentifier>) -> (Fusion, [Node])? {
        if root.isOp("Transpose") {
            guard root.ints("perm") == [0, 2, 1, 3], let product = root.input(0),
                  let matmul = private1(product, outputs), matmul.isOp("MatMul"),
                  let (fusion, inner) = maskedAttention(matmul, outputs),
                  let kernel = fusion.kernel as? MaskedAttentionKernel else { return nil }
            var transposed = kernel
            transposed.transposeOutput = true
            return (Fusion(kernel: transposed, inputs: fusion.inputs, kind: fusion.kind), inner + [matmul])
        }
        guard root.isOp("MatMul"), root.inputs.count == 2, let pValue = root.input(0), let v = root.input(1), v.constant == nil,
              let softmax = private1(pValue, outputs), softmax.isOp("Softmax"),
              let (inner, innerNodes) = scaledSoftmax(softmax, outputs),
              let kernel = inner.kernel as? ScaledSoftmaxKernel, inner.inputs.count == 2,
              let sValue = inner.inputs[0], let mask = inner.inputs[1],
              let scores = private1(sValue, outputs), scores.isOp("MatMul"), scores.inputs.count == 2,
              let q = scores.input(0), let kt = scores.input(1), q.constant == nil, kt.constant == nil else { return nil }
        var attention = MaskedAttentionKernel(divisor: kernel.divisor)
        let (qChain, qInputs, qNodes) = operandChain(q, key: false, outputs)
        let (kChain, kInputs, kNodes) = operandChain(kt, key: true, outputs)
        let (vChain, vInputs, vNodes) = operandChain(v, key: false, outputs)
        (attention.qChain, attention.kChain, attention.vChain) = (qChain, kChain, vChain)
        let fusion = Fusion(kernel: attention, inputs: qInputs + kInputs + [mask] + vInputs, kind: "Attention (masked, fused)")
        return (fusion, [scores, softmax] + innerNodes + qNodes + kNodes + vNodes)
    }

    /// The layout nodes in front of q, kᵀ (`key`) or v the attention kernel can read through
    /// (`OperandChain`), each read only by the next: kᵀ = Transpose(k, [0, 1, 3, 2]) (or
    /// Transpose(x, [0, 2, 3, 1]) of the [B, S, H, D] layout, both transposes in one), a
    /// grouped-query repeat Reshape(Expand(Unsqueeze(x, [2]), ·), ·), and the head transpose
    /// Transpose(·, [0, 2, 1, 3]) in front of it. The repeat and head transpose only under kᵀ's
    /// transpose for k.
    private static func operandChain(_ operand: Value, key: Bool, _ outputs: Set<ObjectIdentifier>)
        -> (OperandChain, [Value?], [Node]) {
        var chain = OperandChain()
        var nodes: [Node] = []
        var current = operand
        if key {
            // BERT exports kᵀ from [B, S, H, D] in one Transpose: both transposes at once.
            if let t = private1(current, outputs), t.isOp("Transpose"), t.ints("perm") == [0, 2, 3, 1], let x = t.input(0) {
                chain.lastTranspose = true
                chain.headTranspose = true
                return (chain, [x], [t])
            }
            guard let t = private1(current, outputs), t.isOp("Transpose"), t.ints("perm") == [0, 1, 3, 2],
                  let x = t.input(0) else { return (chain, [operand], []) }
            chain.lastTranspose = true
            nodes.append(t)
            current = x
        }
        var shapeInputs: [Value?] = []
        if let reshape = private1(current, outputs), reshape.isOp("Reshape"), reshape.inputs.count == 2,
           let expanded = reshape.input(0), let expand = private1(expanded, outputs), expand.isOp("Expand"),
           expand.inputs.count == 2, let unsqueezed = expand.input(0),
           let unsqueeze = private1(unsqueezed, outputs), unsqueeze.isOp("Unsqueeze"), let x = unsqueeze.input(0) {
            let attributeAxes = unsqueeze.ints("axes")
            guard attributeAxes != nil || unsqueeze.inputs.count == 2 else { return (chain, [current], nodes) }
            chain.repeatKV = true
            chain.unsqueezeAxes = attributeAxes
            chain.allowZero = (reshape.int("allowzero") ?? 0) != 0
            shapeInputs = (attributeAxes == nil ? [unsqueeze.input(1)] : []) + [expand.input(1), reshape.input(1)]
            nodes += [reshape, expand, unsqueeze]
            current = x
        }
        if let t = private1(current, outputs), t.isOp("Transpose"), t.ints("perm") == [0, 2, 1, 3], let x = t.input(0) {
            chain.headTranspose = true
            nodes.append(t)
            current = x
        }
        return (chain, [current] + shapeInputs, nodes)
    }

    /// For a binary node with one float scalar operand equal to `constant`: the other operand.
    private static func split(_ node: Node, constant: Double) -> (Value, Double)? {
        guard node.inputs.count == 2 else { return nil }
        for side in 0..<2 {
            if let c = node.input(side).flatMap(scalar), c == constant, let other = node.input(1 - side) {
                return (other, c)
            }
        }
        return nil
    }

    /// The producer of `value` if the value is read by exactly one node input and is no graph output.
    static func private1(_ value: Value, _ outputs: Set<ObjectIdentifier>) -> Node? {
        guard value.uses.count == 1, !outputs.contains(ObjectIdentifier(value)), let p = value.producer,
              p.outputs.count == 1 else { return nil }
        return p
    }

    /// A float32 scalar constant (initializer or Constant node).
    static func scalar(_ value: Value) -> Double? {
        var tensor = value.constant
        if tensor == nil, let p = value.producer, p.isOp("Constant"), p.inputs.isEmpty { tensor = p[attribute: "value"]?.tensor }
        guard let t = tensor, t.dtype == .float, t.count == 1 else { return nil }
        return Double(t.elements(as: Float.self)[0])
    }
}

/// A fused activation (GELU, SiLU) over a float32 tensor; float16/bfloat16 are widened, run
/// in float32 and rounded once. Other float types (the SiLU pattern is type-generic) run the
/// op's definition through the ordinary kernels.
struct FusedActivationKernel: OpKernel {
    let op: sq_vmath_op

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        let x = try required(inputs, 0)
        if x.dtype == .float { return [try vectorMath(op, x, pool)] }
        if x.dtype.isHalfPrecision {
            return try computingHalfInFloat([x], pool) { widened in [try vectorMath(op, try required(widened, 0), pool)] }
        }
        switch op {
        case SQ_VM_SILU:
            let s = try required(UnaryKernel(op: .sigmoid).run([x], pool), 0)
            return [try arithmetic(.multiply, x, s, pool)]
        default:
            throw OpError("the fused GELU expects float32, got \(x.dtype)")
        }
    }
}

/// Softmax(x / divisor + mask) over the last axis: one pass per row (`sq_softmax_row_scaled_f32`)
/// when x is float32 and the mask (float32) broadcasts to x with its last dim equal to x's;
/// otherwise the Div, Add and Softmax kernels one after the other. float16/bfloat16 operands
/// are widened and the result rounded once.
struct ScaledSoftmaxKernel: OpKernel {
    let divisor: Float

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        try computingHalfInFloat(inputs, pool) { try runWidened($0, pool) }
    }

    private func runWidened(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        let x = try required(inputs, 0), mask = try required(inputs, 1, "mask")
        guard x.dtype == .float, mask.dtype == .float, x.rank >= 1, mask.rank <= x.rank, let n = x.shape.last, n > 0,
              (mask.shape.last ?? 1) == n, (try? broadcastShape([x.shape, mask.shape])) == x.shape else {
            let scaled = try arithmetic(.divide, x, Tensor(scalar: divisor), pool)
            let sum = try arithmetic(.add, scaled, mask, pool)
            return try SoftmaxKernel(axis: -1, flattenTail: false, logarithm: false).run([sum], pool)
        }
        let rows = x.count / n
        // Offset of each row's mask: the row index split over x's leading dims, weighted by the
        // mask's strides (0 where the mask has size 1).
        let lead = Array(x.shape.dropLast())
        let padded = [Int](repeating: 1, count: x.rank - mask.rank) + mask.shape
        let strides = contiguousStrides(padded)
        let maskStrides = (0..<lead.count).map { padded[$0] == 1 ? 0 : strides[$0] }
        let out = try x.withElements(as: Float.self) { src in
            try mask.withElements(as: Float.self) { m in
                try pool.make(Float.self, shape: x.shape) { out in
                    let s = try base(src), mp = try base(m), o = try base(out)
                    var index = [Int](repeating: 0, count: lead.count)
                    var maskOffset = 0
                    for row in 0..<rows {
                        sq_softmax_row_scaled_f32(n, s + row * n, divisor, mp + maskOffset, o + row * n)
                        // Advance the multi-index over the leading dims (last fastest).
                        var d = lead.count - 1
                        while d >= 0 {
                            index[d] += 1
                            maskOffset += maskStrides[d]
                            if index[d] < lead[d] { break }
                            maskOffset -= maskStrides[d] * index[d]
                            index[d] = 0
                            d -= 1
                        }
                    }
                }
            }
        }
        return [out]
    }
}
