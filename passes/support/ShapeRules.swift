import SQIR

/// Output types of the ops transformer graphs use, from input types, constants and tracked
/// shape values. Each function returns one type per output (nil where unknown), or nil for
/// an op it does not know.
enum ShapeRules {
    static let sameTypeUnary: Set<String> = [
        "Identity", "Relu", "Neg", "Abs", "Sqrt", "Reciprocal", "Exp", "Log", "Tanh", "Sigmoid", "Erf",
        "Gelu", "Softplus", "Softsign", "Sin", "Cos", "Tan", "Floor", "Ceil", "Round", "Sign", "HardSigmoid",
        "HardSwish", "LeakyRelu", "Elu", "Selu", "Celu", "Mish", "Clip", "Softmax", "LogSoftmax", "Hardmax",
        "CumSum", "Trilu", "LpNormalization", "InstanceNormalization", "BatchNormalization", "ThresholdedRelu",
        "Shrink", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "BitwiseNot",
    ]
    static let boolUnary: Set<String> = ["Not", "IsNaN", "IsInf"]
    static let broadcastingSameType: Set<String> = [
        "Add", "Sub", "Mul", "Div", "Pow", "Mod", "PRelu", "BitShift", "BitwiseAnd", "BitwiseOr",
        "BitwiseXor", "Max", "Min", "Sum", "Mean",
    ]
    static let broadcastingBool: Set<String> = ["Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor"]
    static let norms: Set<String> = ["LayerNormalization", "SimplifiedLayerNormalization", "RMSNormalization", "GroupNormalization"]

    static func infer(_ node: Node, _ state: inout ShapeInferenceState) -> [TensorType?]? {
        guard node.domain.isEmpty else { return nil }
        let op = node.opType
        let x = state.type(node.input(0))
        if sameTypeUnary.contains(op) { return [x] }
        if boolUnary.contains(op) { return [x.map { TensorType(.bool, $0.dims) }] }
        if broadcastingSameType.contains(op) || broadcastingBool.contains(op) {
            let dims = DimMath.broadcast(node.inputs.map { state.dims($0) })
            let dtype = broadcastingBool.contains(op) ? .bool : state.dtype(node.input(0))
            return [dtype.map { TensorType($0, dims) }]
        }
        if norms.contains(op) { return normalization(node, state) }
        switch op {
        case "Constant":
            return [node.output(0)?.knownConstant?.type]
        case "Dropout":
            return [x, x.map { TensorType(.bool, $0.dims) }]
        case "Cast":
            guard let raw = node.int("to"), let to = DType(rawValue: Int32(truncatingIfNeeded: raw)) else { return [nil] }
            return [TensorType(to, x?.dims)]
        case "CastLike":
            guard let to = state.dtype(node.input(1)) else { return [nil] }
            return [TensorType(to, x?.dims)]
        case "Where":
            let dims = DimMath.broadcast(node.inputs.map { state.dims($0) })
            return [state.dtype(node.input(1)).map { TensorType($0, dims) }]
        case "MatMul", "MatMulInteger":
            let dtype: DType? = op == "MatMulInteger" ? .int32 : x?.dtype
            return [dtype.map { TensorType($0, matmulDims(state.dims(node.input(0)), state.dims(node.input(1)))) }]
        case "Gemm":
            return [x.map { TensorType($0.dtype, gemmDims(node, state)) }]
        case "Shape":
            guard let dims = x?.dims else { return [TensorType(.int64, [.unknown])] }
            let (lo, hi) = ShapeKernels.shapeRange(rank: dims.count, start: node.int("start"), end: node.int("end"))
            return [TensorType(.int64, [.known(max(hi - lo, 0))])]
        case "Size":
            return [TensorType(.int64, [])]
        case "QuantizeLinear":
            return [TensorType(quantizedType(node, state), x?.dims)]
        case "DequantizeLinear":
            let scale = state.dtype(node.input(1)) ?? .float
            return [TensorType(scale, x?.dims)]
        case "DynamicQuantizeLinear":
            return [TensorType(.uint8, x?.dims), TensorType(.float, []), TensorType(.uint8, [])]
        case "ConstantOfShape":
            let dtype = node[attribute: "value"]?.tensor?.dtype ?? .float
            guard let shape = state.shapeValue(node.input(0)), !shape.isScalar else { return [TensorType(dtype, nil)] }
            return [TensorType(dtype, shape.dims.map(nonNegative))]
        case "NonZero":
            return [TensorType(.int64, x?.rank.map { [.known($0), .unknown] })]
        case "ArgMax", "ArgMin":
            return [TensorType(.int64, reducedDims(x?.dims, axes: [node.int("axis") ?? 0], keepDims: node.int("keepdims") ?? 1 != 0))]
        default:
            return ShapeRules.inferMovement(node, &state)
        }
    }

    /// Reshape targets and Expand shapes may hold -1 or 0 only where allowed; other negative
    /// dims are unknown.
    static func nonNegative(_ d: Dim) -> Dim {
        if let v = d.value, v < 0 { return .unknown }
        return d
    }

    static func matmulDims(_ a: [Dim]?, _ b: [Dim]?) -> [Dim]? {
        guard var a, var b, !a.isEmpty, !b.isEmpty else { return nil }
        let aVector = a.count == 1, bVector = b.count == 1
        if aVector { a.insert(.known(1), at: 0) }
        if bVector { b.append(.known(1)) }
        guard let batch = DimMath.broadcast([Array(a.dropLast(2)), Array(b.dropLast(2))]) else { return nil }
        var out = batch + [a[a.count - 2], b[b.count - 1]]
        if bVector { out.removeLast() }
        if aVector { out.remove(at: out.count - (bVector ? 1 : 2)) }
        return out
    }

    static func gemmDims(_ node: Node, _ state: ShapeInferenceState) -> [Dim]? {
        guard let a = state.dims(node.input(0)), let b = state.dims(node.input(1)), a.count == 2, b.count == 2 else { return nil }
        let m = node.int("transA") == 1 ? a[1] : a[0]
        let n = node.int("transB") == 1 ? b[0] : b[1]
        return [m, n]
    }

    /// Output element type of QuantizeLinear: the zero point's, else `output_dtype`, else u8.
    static func quantizedType(_ node: Node, _ state: ShapeInferenceState) -> DType {
        if let zeroPoint = state.dtype(node.input(2)) { return zeroPoint }
        if let raw = node.int("output_dtype"), raw != 0, let t = DType(rawValue: Int32(truncatingIfNeeded: raw)) { return t }
        return .uint8
    }

    /// Norm ops: output 0 like the input; mean / inverse std-dev outputs keep the dims before
    /// `axis` and have 1 after it, in the stash type (float by default).
    static func normalization(_ node: Node, _ state: ShapeInferenceState) -> [TensorType?] {
        let x = state.type(node.input(0))
        var out: [TensorType?] = [x]
        guard node.outputs.count > 1 else { return out }
        var statDims: [Dim]?
        if let dims = x?.dims, node.opType != "GroupNormalization", let axis = DimMath.axis(node.int("axis") ?? -1, rank: dims.count) {
            statDims = Array(dims[..<axis]) + [Dim](repeating: .known(1), count: dims.count - axis)
        }
        let stash = node.int("stash_type").flatMap { DType(rawValue: Int32(truncatingIfNeeded: $0)) } ?? .float
        for _ in 1..<node.outputs.count { out.append(TensorType(stash, statDims)) }
        return out
    }

    /// Dims after reducing `axes` (nil: all axes).
    static func reducedDims(_ dims: [Dim]?, axes: [Int]?, keepDims: Bool) -> [Dim]? {
        guard let dims else { return nil }
        var reduced = Set<Int>()
        for a in axes ?? Array(0..<dims.count) {
            guard let n = DimMath.axis(a, rank: dims.count) else { return nil }
            reduced.insert(n)
        }
        var out: [Dim] = []
        for (i, d) in dims.enumerated() {
            if reduced.contains(i) { if keepDims { out.append(.known(1)) } } else { out.append(d) }
        }
        return out
    }
}
