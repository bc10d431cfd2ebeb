import SQIR

/// What `upgrade-opset` knows about default-domain ops between opset 7 and 23.
enum OpsetAdapters {
    /// The newest opset sqopt knows the operator changes up to.
    static let newestKnownOpset = 23
    static let oldestSupportedOpset = 7

    /// The IR version that came with each opset (onnx's VERSION_TABLE), for the IR bump.
    static func irVersion(forOpset opset: Int) -> Int {
        switch opset {
        case ..<9: return 3
        case 9: return 4
        case 10: return 5
        case 11: return 6
        case 12...14: return 7
        case 15...18: return 8
        case 19...20: return 9
        case 21...22: return 10
        default: return 11
        }
    }

    /// Ops whose changes between opset 7 and 23 only add element types, optional inputs or
    /// outputs, or attributes whose default keeps the old behaviour: nothing to rewrite.
    static let compatible: Set<String> = [
        "Abs", "Acos", "Acosh", "Add", "And", "ArgMax", "ArgMin", "Asin", "Asinh", "Atan", "Atanh",
        "AveragePool", "Bernoulli", "BitShift", "BitwiseAnd", "BitwiseNot", "BitwiseOr", "BitwiseXor",
        "BlackmanWindow", "Cast", "CastLike", "Ceil", "Celu", "Compress", "Concat", "Constant", "ConstantOfShape",
        "Conv", "ConvInteger", "ConvTranspose", "Cos", "Cosh", "CumSum", "DepthToSpace", "DequantizeLinear",
        "Det", "Div", "DynamicQuantizeLinear", "Einsum", "Elu", "Equal", "Erf", "Exp", "Expand", "EyeLike",
        "Flatten", "Floor", "GRU", "Gather", "GatherElements", "GatherND", "Gelu", "Gemm", "GlobalAveragePool",
        "GlobalLpPool", "GlobalMaxPool", "Greater", "GreaterOrEqual", "HammingWindow", "HannWindow",
        "HardSigmoid", "HardSwish", "Identity", "If", "InstanceNormalization", "IsInf", "IsNaN", "LRN",
        "LSTM", "LayerNormalization", "LeakyRelu", "Less", "LessOrEqual", "Log", "Loop", "LpNormalization",
        "LpPool", "MatMul", "MatMulInteger", "Max", "MaxPool", "MaxRoiPool", "MaxUnpool", "Mean",
        "MeanVarianceNormalization", "MelWeightMatrix", "Min", "Mish", "Mod", "Mul", "Multinomial", "Neg",
        "NonMaxSuppression", "NonZero", "Not", "OneHot", "Or", "PRelu", "Pow", "QLinearConv", "QLinearMatMul",
        "QuantizeLinear", "RNN", "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike",
        "Range", "Reciprocal", "Relu", "Reshape", "ReverseSequence", "RoiAlign", "Round", "ScatterElements",
        "ScatterND", "Selu", "Shape", "Shrink", "Sigmoid", "Sign", "Sin", "Sinh", "Size", "Softplus",
        "Softsign", "SpaceToDepth", "Sqrt", "Sub", "Sum", "Tan", "Tanh", "ThresholdedRelu", "Tile",
        "Transpose", "Trilu", "Unique", "Where", "Xor",
        // Introduced after opset 7 and only extended with types since.
        "AffineGrid", "CenterCropPad", "ConcatFromSequence", "DeformConv", "ImageDecoder",
        "NegativeLogLikelihoodLoss", "Optional", "OptionalGetElement", "OptionalHasElement", "RegexFullMatch",
        "Col2Im", "STFT", "SequenceAt", "SequenceConstruct", "SequenceEmpty", "SequenceErase", "SequenceInsert",
        "SequenceLength", "SequenceMap", "SoftmaxCrossEntropyLoss", "SplitToSequence", "StringConcat",
        "StringNormalizer", "StringSplit", "TfIdfVectorizer",
        // RMSNorm: the standard op (opset 23) and onnxruntime's default-domain contrib op, which
        // does not change with the ONNX opset (canonicalize-norms emits it below opset 23).
        "RMSNormalization", "SimplifiedLayerNormalization",
    ]

    static let reductionsMovingAt18: Set<String> = [
        "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum",
        "ReduceLogSumExp", "ReduceSumSquare",
    ]

    /// One planned change of one node; `apply` mutates (called after every node was checked).
    struct Rewrite {
        let node: Node
        let apply: (Node) -> Void
    }

    /// The rewrite `node` needs from opset `from` to `to`, nil when none; throws when the op
    /// would need a rewrite this pass does not know.
    static func plan(_ node: Node, from: Int, to: Int) throws -> Rewrite? {
        let op = node.opType
        func crosses(_ version: Int) -> Bool { from < version && version <= to }
        func refuse(_ why: String) -> IRError {
            IRError(node: node, reason: "upgrade-opset cannot take \(op) from opset \(from) to \(to): \(why)")
        }
        if compatible.contains(op) { return nil }
        if reductionsMovingAt18.contains(op) {
            return crosses(18) ? Rewrite(node: node) { moveIntsToInput($0, attribute: "axes", index: 1) } : nil
        }
        switch op {
        case "ReduceSum":
            return crosses(13) ? Rewrite(node: node) { moveIntsToInput($0, attribute: "axes", index: 1) } : nil
        case "Squeeze", "Unsqueeze":
            return crosses(13) ? Rewrite(node: node) { moveIntsToInput($0, attribute: "axes", index: 1) } : nil
        case "Split":
            guard crosses(13) || crosses(18) else { return nil }
            return Rewrite(node: node) { n in
                if crosses(13) { moveIntsToInput(n, attribute: "split", index: 1) }
                if crosses(18) && n.input(1) == nil && n[attribute: "num_outputs"] == nil {
                    n[attribute: "num_outputs"] = Attribute("num_outputs", .int(n.outputs.count))
                }
            }
        case "Slice":
            guard crosses(10) else { return nil }
            return Rewrite(node: node) { n in
                moveIntsToInput(n, attribute: "starts", index: 1)
                moveIntsToInput(n, attribute: "ends", index: 2)
                moveIntsToInput(n, attribute: "axes", index: 3)
            }
        case "TopK":
            guard crosses(10) else { return nil }
            return Rewrite(node: node) { n in
                if let k = n.int("k") {
                    n[attribute: "k"] = nil
                    setConstantInput(n, 1, Tensor(shape: [1], values: [Int64(k)]), suffix: "k")
                }
            }
        case "Pad":
            guard crosses(11) else { return nil }
            let dtype = try floatType(of: node, refuse)
            return Rewrite(node: node) { n in
                moveIntsToInput(n, attribute: "pads", index: 1)
                if let value = n.float("value") {
                    n[attribute: "value"] = nil
                    setConstantInput(n, 2, scalar(Double(value), dtype), suffix: "constant_value")
                }
            }
        case "Clip":
            guard crosses(11) else { return nil }
            let dtype = try floatType(of: node, refuse)
            return Rewrite(node: node) { n in
                let bounds = [("min", 1), ("max", 2)].map { (name, index) in (n.float(name), index, name) }
                for (value, index, name) in bounds {
                    n[attribute: name] = nil
                    if let value { setConstantInput(n, index, scalar(Double(value), dtype), suffix: name) }
                }
            }
        case "Dropout":
            guard crosses(12) else { return nil }
            return Rewrite(node: node) { n in
                if let ratio = n.float("ratio") {
                    n[attribute: "ratio"] = nil
                    setConstantInput(n, 1, Tensor(scalar: ratio), suffix: "ratio")
                }
            }
        case "Softmax", "LogSoftmax", "Hardmax":
            guard crosses(13) else { return nil }
            // Before 13 the op flattened the input to 2-D at `axis` (default 1); from 13 it
            // works along `axis` (default -1). The same only when axis is the last axis.
            let axis = node.int("axis") ?? 1
            guard axis == -1 || node.input(0)?.type?.rank.map({ axis == $0 - 1 }) == true else {
                throw refuse("axis \(axis) is not known to be the last axis (the meaning changed at opset 13); run shape-inference first or rewrite it with Flatten/Reshape")
            }
            return Rewrite(node: node) { $0[attribute: "axis"] = Attribute("axis", .int(axis)) }
        case "Scatter":
            guard to >= 11 else { return nil }
            return Rewrite(node: node) { $0.opType = "ScatterElements" }
        case "BatchNormalization":
            guard crosses(9), let spatial = node.int("spatial") else { return nil }
            guard spatial == 1 else { throw refuse("spatial=0 was removed at opset 9") }
            return Rewrite(node: node) { $0[attribute: "spatial"] = nil }
        case "Resize":
            guard !crosses(11) else { throw refuse("Resize gained a roi input and coordinate modes at opset 11") }
            return nil
        case "GridSample":
            guard !crosses(20) else { throw refuse("its mode values and rank support changed at opset 20") }
            return nil
        case "DFT":
            guard !crosses(20) else { throw refuse("axis became an input at opset 20") }
            return nil
        case "GroupNormalization":
            guard !crosses(21) else { throw refuse("scale and bias became per-channel at opset 21") }
            return nil
        case "Scan":
            guard !crosses(9) else { throw refuse("Scan's inputs changed at opset 9") }
            return nil
        case "Upsample":
            guard to < 10 else { throw refuse("Upsample was removed at opset 10 (use Resize)") }
            return nil
        default:
            throw refuse("sqopt does not know how \(op) changed between these opsets")
        }
    }

    private static func floatType(of node: Node, _ refuse: (String) -> IRError) throws -> DType {
        guard let dtype = node.input(0)?.type?.dtype else {
            throw refuse("the element type of its input is unknown (run shape-inference first)")
        }
        guard dtype.isFloatingPoint else { throw refuse("input type \(dtype) is not floating point") }
        return dtype
    }

    static func scalar(_ value: Double, _ dtype: DType) -> Tensor {
        switch dtype {
        case .double: return Tensor(scalar: value)
        case .float16:
            let bits = [floatToHalf(Float(value))]
            return bits.withUnsafeBytes { (try? Tensor(dtype: .float16, shape: [], storage: TensorStorage(copying: $0))) ?? Tensor(scalar: Float(value)) }
        default: return Tensor(scalar: Float(value))
        }
    }

    /// Moves an ints attribute into input `index` as an int64 initializer (no-op if absent).
    static func moveIntsToInput(_ node: Node, attribute name: String, index: Int) {
        guard let values = node.ints(name) else { return }
        node[attribute: name] = nil
        setConstantInput(node, index, Tensor(shape: [values.count], values: values.map(Int64.init)), suffix: name)
    }

    /// Adds an initializer to the node's graph and makes it input `index` (earlier missing
    /// inputs become omitted ones).
    static func setConstantInput(_ node: Node, _ index: Int, _ tensor: Tensor, suffix: String) {
        guard let graph = node.graph else { return }
        let base = node.name.isEmpty ? "\(node.opType)_\(suffix)" : "\(node.name)_\(suffix)"
        node.setInput(index, graph.addInitializer(tensor, name: base))
    }
}
