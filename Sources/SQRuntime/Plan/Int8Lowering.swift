import SQIR

/// Finds the QDQ patterns of W8A8 models (`QDQForms`, matched with `PatternMatcher`) and
/// turns each into one int8 kernel:
///
///     x ─ QuantizeLinear ─ DequantizeLinear ─┐
///                                            MatMul / Gemm (+ C)  ->  Int8LinearKernel(x, scale)
///     W_int8 ─ DequantizeLinear ─────────────┘
///
/// - activations: symmetric int8 (zero point absent or 0, int8 output), or uint8 with zero
///   point 128 on both Q and DQ (the same codes shifted by 128: `quantize{target=onnxruntime}`),
///   the same scale value on Q and DQ; per tensor (O3 constant or O2 computed) or per row
///   (opset-21 blocked, `axis = -1`, `block_size = K`, as O1 writes it);
/// - the onnxruntime target's dynamic form `Mul(MatMul(DQ(Q(x, Δ, zp), 1, 128)), DQ(W)), Δ)`
///   (zp 128, or `Expand(128, Shape(Δ))` for a Q blocked per row) and its older
///   `Mul(MatMul(DQ(Q(Div(x, Δ), 1, 128)), DQ(W)), Δ)` (Δ per row `[…, T, 1]` or per tensor):
///   the same kernel as the blocked / per-tensor QDQ form of x with scale Δ, anchored on the Mul;
/// - weights: a constant int8 matrix, zero point 0, per tensor or per output channel;
/// - Gemm: transA = 0, alpha = beta = 1, C absent or a constant bias of N values;
/// - attention MatMuls with both operands activations in QDQ run as a batched int8 GEMM.
///
/// The Q and DQ nodes are skipped when nothing else reads their outputs (their values are
/// then not observable); O1's per-row scale subgraph of a linear's activation, and the
/// O1/O2 scale subgraphs of the attention operands, are absorbed into the kernels too.
/// One kernel that does the work of several nodes: what the plan runs in place of the node
/// that produces the fused result (the int8 lowering's and the elementwise fusions').
struct FusedStep {
    let kernel: any OpKernel
    let inputs: [Value?]
    /// For profiles: `MatMul (int8)`, `MatMul+Add (int8)`, `Gelu (fused)`, ...
    let kind: String
}

struct Int8Lowering {
    typealias Fusion = FusedStep

    /// Nodes whose work the fused kernels do.
    private(set) var absorbed: Set<ObjectIdentifier> = []
    private var fusions: [ObjectIdentifier: Fusion] = [:]

    /// `observable`: value names that must stay observable (a bias Add then stays a node).
    init(graph: Graph, live: Set<ObjectIdentifier>, observable: Set<String> = []) {
        var candidates: [ObjectIdentifier: Node] = [:]
        var fusedUses = Set<ObjectIdentifier>()
        let graphOutputs = Set(graph.outputs.map(ObjectIdentifier.init))
        // The onnxruntime target's scaled products are matched on their Mul, so their MatMul
        // is not taken first as a scale-1 int8 MatMul.
        var prescaled: [ObjectIdentifier: (Fusion, [Node])] = [:]
        var claimed = Set<ObjectIdentifier>()
        for node in graph.nodes where live.contains(ObjectIdentifier(node)) {
            guard let (fusion, replaced, matmul) = Self.matchScaledProduct(node),
                  live.contains(ObjectIdentifier(matmul)) else { continue }
            prescaled[ObjectIdentifier(node)] = (fusion, replaced)
            claimed.insert(ObjectIdentifier(matmul))
        }
        for node in graph.nodes where live.contains(ObjectIdentifier(node)) && !claimed.contains(ObjectIdentifier(node)) {
            guard let (fusion, replaced) = prescaled[ObjectIdentifier(node)] ?? Self.match(node) else { continue }
            // A bias Add that alone reads the product joins the kernel (its epilogue adds
            // the bias); the fusion is then anchored on the Add, and the MatMul is replaced.
            if !(node.output(0).map { observable.contains($0.name) } ?? true),
               let (add, withBias) = Self.biasAdd(after: node, fusion, graphOutputs: graphOutputs),
               live.contains(ObjectIdentifier(add)) {
                fusions[ObjectIdentifier(add)] = withBias
                fusedUses.insert(ObjectIdentifier(add))
                candidates[ObjectIdentifier(node)] = node
            } else {
                fusions[ObjectIdentifier(node)] = fusion
                fusedUses.insert(ObjectIdentifier(node))
            }
            for n in replaced { candidates[ObjectIdentifier(n)] = n }
        }
        // A replaced Q/DQ node is skipped only if every reader of its outputs is fused or
        // skipped itself (repeat until stable: a kept DQ keeps its Q).
        var skipped = Set(candidates.keys)
        var changed = true
        while changed {
            changed = false
            for (id, node) in candidates where skipped.contains(id) {
                let external = node.outputs.contains { out in
                    guard let out else { return false }
                    if graphOutputs.contains(ObjectIdentifier(out)) { return true }
                    return out.uses.contains { use in
                        let user = ObjectIdentifier(use.node)
                        return !fusedUses.contains(user) && !skipped.contains(user) && live.contains(user)
                    }
                }
                if external {
                    skipped.remove(id)
                    changed = true
                }
            }
        }
        absorbed = skipped
    }

    func fusion(for node: Node) -> Fusion? { fusions[ObjectIdentifier(node)] }

    /// Every node this lowering owns: the fused anchors and the absorbed nodes.
    var ownedNodes: Set<ObjectIdentifier> { absorbed.union(fusions.keys) }

    // MARK: matching

    private static func match(_ node: Node) -> (Fusion, [Node])? {
        if node.isOp("MatMul") {
            guard let a = node.input(0), let b = node.input(1), let x = activation(a) else { return nil }
            if let w = weight(b, outputAxis: 1) {
                let dynamic = dynamicRowScale(x.scale, of: x.input, x.parameters, k: w.tensor.shape[0])
                guard let kernel = try? Int8LinearKernel(activation: x.parameters, weight: w.tensor, scales: w.scales,
                                                         transposed: false, bias: nil, dynamicScale: dynamic?.scale)
                else { return nil }
                return (Fusion(kernel: kernel, inputs: dynamic == nil ? [x.input, x.scale] : [x.input], kind: "MatMul (int8)"),
                        [x.dq, x.q, w.dq] + (dynamic?.nodes ?? []))
            }
            if let y = activation(b) {
                // O1/O2: the operands' scale subgraphs are computed inside the kernel.
                let da = dynamicScale(x.scale, of: x.input, x.parameters, allowed: [.rows, .tensor])
                let db = dynamicScale(y.scale, of: y.input, y.parameters, allowed: [.columns, .tensor])
                let kernel = Int8BatchedMatMulKernel(a: x.parameters, b: y.parameters, aDynamic: da?.scale, bDynamic: db?.scale)
                return (Fusion(kernel: kernel, inputs: [x.input, da == nil ? x.scale : nil, y.input, db == nil ? y.scale : nil],
                               kind: "MatMul (int8 batched)"),
                        [x.dq, x.q, y.dq, y.q] + (da?.nodes ?? []) + (db?.nodes ?? []))
            }
            return nil
        }
        if node.isOp("Gemm") {
            guard (node.int("transA") ?? 0) == 0, (node.float("alpha") ?? 1) == 1, (node.float("beta") ?? 1) == 1,
                  let a = node.input(0), let b = node.input(1), let x = activation(a) else { return nil }
            let transB = (node.int("transB") ?? 0) != 0
            guard let w = weight(b, outputAxis: transB ? 0 : 1) else { return nil }
            var bias: [Float]?
            if let c = node.input(2) {
                let n = transB ? w.tensor.shape[0] : w.tensor.shape[1]
                guard let t = constantTensor(c), t.dtype == .float, t.count == n, t.rank <= 1 || t.shape == [1, n] else { return nil }
                bias = t.elements(as: Float.self)
            }
            let dynamic = dynamicRowScale(x.scale, of: x.input, x.parameters, k: w.tensor.shape[transB ? 1 : 0])
            guard let kernel = try? Int8LinearKernel(activation: x.parameters, weight: w.tensor, scales: w.scales,
                                                     transposed: transB, bias: bias, dynamicScale: dynamic?.scale)
            else { return nil }
            return (Fusion(kernel: kernel, inputs: dynamic == nil ? [x.input, x.scale] : [x.input], kind: "Gemm (int8)"),
                    [x.dq, x.q, w.dq] + (dynamic?.nodes ?? []))
        }
        return nil
    }

    /// `Add(MatMul, bias)` (either operand order) where the int8 MatMul's product is read
    /// only by that Add and is no graph output, and bias is a constant float32 `[N]`:
    /// the same kernel with the bias in its epilogue (`acc·s + bias[j]`, the same float
    /// operations as the separate Add, so the same bits).
    private static func biasAdd(after node: Node, _ fusion: Fusion, graphOutputs: Set<ObjectIdentifier>) -> (Node, Fusion)? {
        guard node.isOp("MatMul") || node.isOp("Mul"), let linear = fusion.kernel as? Int8LinearKernel, linear.bias == nil,
              let product = node.output(0), !graphOutputs.contains(ObjectIdentifier(product)),
              product.uses.count == 1, let add = product.uses.first?.node, add.isOp("Add"), add.inputs.count == 2,
              let other = add.input(1 - (product.uses.first?.index ?? 0)), let bias = constantTensor(other),
              bias.dtype == .float, bias.rank == 1, bias.count == linear.n else { return nil }
        let kernel = linear.addingBias(bias.elements(as: Float.self))
        return (add, Fusion(kernel: kernel, inputs: fusion.inputs, kind: fusion.kind.replacingOccurrences(of: "MatMul", with: "MatMul+Add")))
    }

    /// `QDQForms.scaledProduct` (either Mul operand order), the onnxruntime target's dynamic
    /// form: `Mul(MatMul(DQ(Q(x, Δ, zp), 1, 128)), DQ(W)), Δ)` with Q per tensor (Δ one value)
    /// or blocked per row (`axis = -1, block_size = K`), or the older
    /// `Mul(MatMul(DQ(Q(Div(x, Δ), 1, 128)), DQ(W)), Δ)` (x / Δ / 1 == x / Δ); the product is
    /// read only by the Mul, which uses the Q's (the Div's) Δ. Either is x quantized with scale
    /// Δ, so it runs as the QDQ form's kernel: per row when Δ is O1's row-scale subgraph
    /// (absorbed) or a `[…, T, 1]` tensor, per tensor when Δ is a scalar.
    private static func matchScaledProduct(_ mul: Node) -> (Fusion, [Node], Node)? {
        guard mul.inputs.count == 2, let m = PatternMatcher.match(QDQForms.scaledProduct, root: mul),
              let matmul = m.node("product"), let input = m["input"], let scale = m["delta"],
              let w = weight(m, outputAxis: 1) else { return nil }
        let k = w.tensor.shape[0]
        let rows = ActivationQDQ(axis: -1, blockSize: k)
        let quantizeNodes: [Node]
        // The Q's layout, when it quantizes with Δ itself: nil per tensor, else per row.
        var blocked: Bool?
        if let div = m.node("x") {
            guard let x = activation(m), x.parameters.blockSize == 0 else { return nil }
            quantizeNodes = [x.dq, x.q, div]
        } else {
            guard let q = m.node("quantize"), let dq = m.node("dequantize"),
                  (dq.int(QDQForms.axis) ?? 1) == 1 || dq.int(QDQForms.axis) == -1 else { return nil }
            let block = q.int(QDQForms.blockSize) ?? 0
            if block > 0 {
                guard q.int(QDQForms.axis) == -1, block == k, m.node("zeroPointExpand") != nil else { return nil }
            } else {
                guard m.node("zeroPointExpand") == nil else { return nil }
            }
            blocked = block > 0
            quantizeNodes = [dq, q] + ["zeroPointExpand", "zeroPointShape"].compactMap { m.node($0) }
        }
        let parameters: ActivationQDQ
        let dynamic = dynamicRowScale(scale, of: input, rows, k: k)
        let dims = scale.type?.dims
        if dynamic != nil, blocked != false {
            parameters = rows
        } else if blocked != true, let dims, dims.allSatisfy({ $0.value == 1 }) {
            parameters = ActivationQDQ(axis: 1, blockSize: 0)
        } else if blocked != false, let dims, dims.last?.value == 1, dims.count >= 2 {
            parameters = rows
        } else {
            return nil
        }
        let rowScale = parameters.blockSize > 0 ? dynamic : nil
        guard let kernel = try? Int8LinearKernel(activation: parameters, weight: w.tensor, scales: w.scales,
                                                 transposed: false, bias: nil, dynamicScale: rowScale?.scale) else { return nil }
        let fusion = Fusion(kernel: kernel, inputs: rowScale == nil ? [input, scale] : [input], kind: "MatMul (int8)")
        return (fusion, [matmul] + quantizeNodes + [w.dq] + (rowScale?.nodes ?? []), matmul)
    }

    /// The O1 scale subgraph `Max(Div(ReduceMax(Abs(x), axes=[-1], keepdims=1), c), m)` of
    /// the activation x, with float32 scalar constants c and m: the kernel computes the
    /// per-row scales itself (`sq_quantize_rows_dynamic_s8`, the same float operations).
    /// Only for one block per row of K (what O1 writes), so the kernel's rows are the graph's blocks.
    private static func dynamicRowScale(_ scale: Value, of x: Value, _ qdq: ActivationQDQ, k: Int) -> (scale: DynamicRowScale, nodes: [Node])? {
        guard qdq.axis == -1, qdq.blockSize == k, let s = ScaleSubgraph(scale, of: x) else { return nil }
        guard s.minValue.dtype == .float, s.minValue.count == 1, s.divisor.dtype == .float, s.divisor.count == 1,
              (s.reduce.int(QDQForms.keepDims) ?? 1) == 1, (s.reduce.int(QDQForms.noopWithEmptyAxes) ?? 0) == 0 else { return nil }
        guard s.axes(default: nil) == [-1] else { return nil }
        let c = s.divisor.elements(as: Float.self)[0], m = s.minValue.elements(as: Float.self)[0]
        return (DynamicRowScale(divisor: c, minScale: m), s.nodes)
    }

    /// The dynamic scale subgraph `Max(Div(ReduceMax(Abs(x), axes, keepdims), c), m)` of an
    /// attention operand (float32 scalar constants c, m), matched with the Q/DQ layout:
    /// per row (`axes=[-1]`, keepdims=1, blocked along -1), per column (`axes=[-2]`,
    /// keepdims=1, blocked along -2: O1's Kᵀ) or per tensor (no axes, keepdims=0, no
    /// blocks: O2, and O1's operands whose contracted dim is symbolic). Block sizes are
    /// checked against the shapes at run time (the kernel falls back otherwise).
    private static func dynamicScale(_ scale: Value, of x: Value, _ qdq: ActivationQDQ,
                                     allowed: Set<DynamicScale.Extent>) -> (scale: DynamicScale, nodes: [Node])? {
        guard let s = ScaleSubgraph(scale, of: x) else { return nil }
        let (minValue, divisor, reduce) = (s.minValue, s.divisor, s.reduce)
        guard minValue.dtype == .float, minValue.count == 1, minValue.rank == 0, divisor.dtype == .float,
              divisor.count == 1, divisor.rank == 0, (reduce.int(QDQForms.noopWithEmptyAxes) ?? 0) == 0 else { return nil }
        if let type = x.type, type.dtype != .float { return nil }
        let axes = s.axes(default: [])
        let keepDims = (reduce.int(QDQForms.keepDims) ?? 1) == 1
        let extent: DynamicScale.Extent
        switch axes {
        case [-1]? where keepDims && qdq.axis == -1 && qdq.blockSize > 0: extent = .rows
        case [-2]? where keepDims && qdq.axis == -2 && qdq.blockSize > 0: extent = .columns
        case []? where !keepDims && qdq.blockSize == 0: extent = .tensor
        default: return nil
        }
        guard allowed.contains(extent) else { return nil }
        let c = divisor.elements(as: Float.self)[0], m = minValue.elements(as: Float.self)[0]
        return (DynamicScale(extent: extent, divisor: c, minScale: m), s.nodes)
    }

    /// `QDQForms.dynamicScale()` of x: the dynamic scale subgraph `quantize` writes. The
    /// callers check the constants, keepdims and axes for their kernel.
    private struct ScaleSubgraph {
        let match: Match
        let reduce: Node
        let divisor: Tensor, minValue: Tensor

        init?(_ scale: Value, of x: Value) {
            guard let m = PatternMatcher.match(Int8Lowering.scalePattern, value: scale), m["x"] === x, QDQForms.reducesAlike(m),
                  let reduce = m.node("reduce"), let divisor = m.constant("divisor"), let minValue = m.constant("minimum")
            else { return nil }
            (match, self.reduce, self.divisor, self.minValue) = (m, reduce, divisor, minValue)
        }

        /// The nodes the kernel absorbs.
        var nodes: [Node] { ["max", "div", "absMax", "negate", "reduceMin", "reduce", "abs"].compactMap { match.node($0) } }

        /// ReduceMax's axes (`QDQForms.reduceAxes`).
        func axes(default missing: [Int]?) -> [Int]? { QDQForms.reduceAxes(match, default: missing) }
    }

    private static let activationPattern = QDQForms.activation()
    private static let scalePattern = QDQForms.dynamicScale()

    /// `QDQForms.activation()`: symmetric int8 QDQ or its uint8 twin (zero point 128 on
    /// both), with the same scale on Q and DQ and the same `axis` / `block_size`.
    private static func activation(_ value: Value) -> (input: Value, scale: Value, parameters: ActivationQDQ, q: Node, dq: Node)? {
        PatternMatcher.match(activationPattern, value: value).flatMap(activation)
    }

    /// The activation pair of a match of `QDQForms.activation(of:scale:)` (alone or inside
    /// `scaledProduct`).
    private static func activation(_ m: Match) -> (input: Value, scale: Value, parameters: ActivationQDQ, q: Node, dq: Node)? {
        guard let q = m.node("quantize"), let dq = m.node("dequantize"), let x = m["x"], let scale = m["scale"],
              let dqScale = m["dequantizeScale"], sameValue(scale, dqScale) else { return nil }
        let axis = q.int(QDQForms.axis) ?? 1, block = q.int(QDQForms.blockSize) ?? 0
        guard (dq.int(QDQForms.axis) ?? 1) == axis, (dq.int(QDQForms.blockSize) ?? 0) == block else { return nil }
        if block == 0, let s = constantTensor(scale), s.count != 1 { return nil }  // per-axis activations
        return (x, scale, ActivationQDQ(axis: axis, blockSize: block), q, dq)
    }

    /// `QDQForms.weight` of a constant 2-D weight, per tensor or per output channel
    /// (`outputAxis` of the stored layout).
    private static func weight(_ value: Value, outputAxis: Int) -> (tensor: Tensor, scales: [Float], dq: Node)? {
        PatternMatcher.match(QDQForms.weight, value: value).flatMap { weight($0, outputAxis: outputAxis) }
    }

    private static func weight(_ m: Match, outputAxis: Int) -> (tensor: Tensor, scales: [Float], dq: Node)? {
        guard let dq = m.node("weightDequantize"), let w = m.constant("weight"), let s = m.constant("weightScale"),
              let scales = try? s.numericValues().map(Float.init) else { return nil }  // half scales widen exactly
        if s.count != 1 {
            let axis = dq.int(QDQForms.axis) ?? 1
            guard s.rank == 1, axis == outputAxis || axis == outputAxis - 2, s.count == w.shape[outputAxis] else { return nil }
        }
        return (w, scales, dq)
    }

    /// Constant data of an initializer or a Constant node's output.
    private static func constantTensor(_ value: Value) -> Tensor? {
        if let t = value.constant { return t }
        if let p = value.producer, p.isOp("Constant"), p.inputs.isEmpty { return p[attribute: "value"]?.tensor }
        return nil
    }

    private static func sameValue(_ a: Value, _ b: Value) -> Bool {
        if a === b { return true }
        guard let x = constantTensor(a), let y = constantTensor(b) else { return false }
        return x.isIdentical(to: y)
    }
}

/// How an activation operand was quantized (the QuantizeLinear attributes).
struct ActivationQDQ: Sendable {
    let axis: Int
    let blockSize: Int
}

/// An activation scale the int8 kernel computes per row: max(absmax(row) / divisor, minScale).
struct DynamicRowScale: Sendable {
    let divisor: Float
    let minScale: Float
}
