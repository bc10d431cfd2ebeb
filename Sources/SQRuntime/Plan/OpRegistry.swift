import SQIR

/// The op table: (domain, op type) -> kernel factory. One line per op; the factory reads
/// attributes once and prepares constant inputs. Lookup happens once per node when a
/// plan is built.
enum OpRegistry {
    static func factory(opType: String, domain: String) -> KernelFactory? {
        table[key(domain, opType)]
    }

    /// `domain` is canonical (`ONNXDomain`: "" is the default domain).
    static func key(_ domain: String, _ opType: String) -> String {
        domain.isEmpty ? opType : "\(domain)::\(opType)"
    }

    /// Every supported op as `OpType` (default domain) or `domain::OpType`, sorted.
    static var supportedOperators: [String] { table.keys.sorted() }

    private static func unary(_ op: UnaryOp) -> KernelFactory { { _ in UnaryKernel(op: op) } }
    private static func arithmetic(_ op: ArithmeticOp) -> KernelFactory { { _ in ArithmeticKernel(op: op) } }
    private static func compare(_ op: CompareOp) -> KernelFactory { { _ in CompareKernel(op: op) } }
    private static func variadic(_ r: VariadicKernel.Reduction) -> KernelFactory { { _ in VariadicKernel(reduction: r) } }

    private static func reduce(_ r: Reduction) -> KernelFactory {
        { n in
            ReduceKernel(reduction: r, keepDims: try n.int("keepdims", default: 1) != 0,
                         noopWithEmptyAxes: try n.int("noop_with_empty_axes", default: 0) != 0,
                         attributeAxes: try n.ints("axes"), axesFromInput: true)
        }
    }

    private static func softmax(log: Bool) -> KernelFactory {
        { n in
            let modern = n.opset >= 13
            return SoftmaxKernel(axis: try n.int("axis", default: modern ? -1 : 1), flattenTail: !modern, logarithm: log)
        }
    }

    private static func normalization(rms: Bool, defaultEpsilon: Float) -> KernelFactory {
        { n in NormalizationKernel(axis: try n.int("axis", default: -1), epsilon: try n.float("epsilon", default: defaultEpsilon), rms: rms) }
    }

    private static func rotaryEmbedding(contribOrder: Bool) -> KernelFactory {
        { n in
            guard try n.int("is_packed_batching", default: 0) == 0 else { throw OpError("packed batching is not supported") }
            guard try n.float("scale", default: 1) == 1 else { throw OpError("RotaryEmbedding with scale != 1 is not supported") }
            return RotaryEmbeddingKernel(interleaved: try n.int("interleaved", default: 0) != 0,
                                         numHeads: try n.int("num_heads", default: 0),
                                         rotaryDim: try n.int("rotary_embedding_dim", default: 0), contribOrder: contribOrder)
        }
    }

    private static func argExtremum(max: Bool) -> KernelFactory {
        { n in
            ArgExtremumKernel(axis: try n.int("axis", default: 0), keepDims: try n.int("keepdims", default: 1) != 0,
                              selectLast: try n.int("select_last_index", default: 0) != 0, findMax: max)
        }
    }

    private static func scatterReduction(_ n: NodeLowering) throws -> ScatterReduction {
        let name = try n.string("reduction", default: "none")
        guard let reduction = ScatterReduction(rawValue: name) else { throw OpError("unknown scatter reduction '\(name)'") }
        return reduction
    }

    private static let table: [String: KernelFactory] = [
        // Arithmetic and math
        "Add": arithmetic(.add), "Sub": arithmetic(.subtract), "Mul": arithmetic(.multiply), "Div": arithmetic(.divide),
        "Mod": { n in ArithmeticKernel(op: .mod(fmod: try n.int("fmod", default: 0) != 0)) },
        "Pow": { n in PowKernel(constantExponent: n.constantInput(1).flatMap { $0.count == 1 ? (try? $0.numericValues())?.first : nil }) },
        "Max": variadic(.max), "Min": variadic(.min), "Sum": variadic(.sum), "Mean": variadic(.mean),
        "Sqrt": unary(.sqrt), "Reciprocal": unary(.reciprocal), "Neg": unary(.neg), "Abs": unary(.abs),
        "Exp": unary(.exp), "Log": unary(.log), "Erf": unary(.erf), "Tanh": unary(.tanh), "Sigmoid": unary(.sigmoid),
        "Relu": unary(.relu), "Softplus": unary(.softplus), "Softsign": unary(.softsign),
        "Floor": unary(.floor), "Ceil": unary(.ceil), "Round": unary(.round), "Sign": unary(.sign),
        "Sin": unary(.trig(.sin)), "Cos": unary(.trig(.cos)), "Tan": unary(.trig(.tan)),
        "Asin": unary(.trig(.asin)), "Acos": unary(.trig(.acos)), "Atan": unary(.trig(.atan)),
        "Sinh": unary(.trig(.sinh)), "Cosh": unary(.trig(.cosh)),
        "Asinh": unary(.trig(.asinh)), "Acosh": unary(.trig(.acosh)), "Atanh": unary(.trig(.atanh)),
        "Gelu": { n in
            let approximate = try n.string("approximate", default: "none")
            guard approximate == "none" || approximate == "tanh" else { throw OpError("unknown Gelu approximation '\(approximate)'") }
            return UnaryKernel(op: .gelu(tanhApproximation: approximate == "tanh"))
        },
        "com.microsoft::Gelu": unary(.gelu(tanhApproximation: false)),
        "com.microsoft::FastGelu": { _ in BiasGeluKernel(tanhApproximation: true, biasRequired: false) },
        "com.microsoft::BiasGelu": { _ in BiasGeluKernel(tanhApproximation: false, biasRequired: true) },
        "com.microsoft::RotaryEmbedding": rotaryEmbedding(contribOrder: true),
        "RotaryEmbedding": rotaryEmbedding(contribOrder: false),
        "LeakyRelu": { n in UnaryKernel(op: .leakyRelu(alpha: try n.float("alpha", default: 0.01))) },
        "HardSigmoid": { n in UnaryKernel(op: .hardSigmoid(alpha: try n.float("alpha", default: 0.2), beta: try n.float("beta", default: 0.5))) },
        "HardSwish": unary(.hardSwish),
        "Elu": { n in UnaryKernel(op: .elu(alpha: try n.float("alpha", default: 1))) },
        "Selu": { n in
            UnaryKernel(op: .selu(alpha: try n.float("alpha", default: 1.67326319217681884765625),
                                  gamma: try n.float("gamma", default: 1.05070102214813232421875)))
        },
        "Celu": { n in UnaryKernel(op: .celu(alpha: try n.float("alpha", default: 1))) },
        "Mish": unary(.mish),
        "ThresholdedRelu": { n in UnaryKernel(op: .thresholdedRelu(alpha: try n.float("alpha", default: 1))) },
        "Clip": { _ in ClipKernel() },
        // Comparison and logic
        "Equal": compare(.equal), "Less": compare(.less), "Greater": compare(.greater),
        "LessOrEqual": compare(.lessOrEqual), "GreaterOrEqual": compare(.greaterOrEqual),
        "And": { _ in LogicKernel(op: .and) }, "Or": { _ in LogicKernel(op: .or) }, "Xor": { _ in LogicKernel(op: .xor) },
        "Not": { _ in NotKernel() }, "Where": { _ in WhereKernel() },
        "BitwiseAnd": { _ in BitwiseKernel(op: .and) }, "BitwiseOr": { _ in BitwiseKernel(op: .or) },
        "BitwiseXor": { _ in BitwiseKernel(op: .xor) }, "BitwiseNot": { _ in BitwiseKernel(op: .not) },
        "BitShift": { n in
            let direction = try n.string("direction", default: "")
            guard direction == "LEFT" || direction == "RIGHT" else { throw OpError("BitShift direction must be LEFT or RIGHT") }
            return BitwiseKernel(op: direction == "LEFT" ? .shiftLeft : .shiftRight)
        },
        // Reductions, normalisation
        "ReduceSum": reduce(.sum), "ReduceMean": reduce(.mean), "ReduceMax": reduce(.max), "ReduceMin": reduce(.min),
        "ReduceProd": reduce(.prod), "ReduceL1": reduce(.l1), "ReduceL2": reduce(.l2),
        "ReduceSumSquare": reduce(.sumSquare), "ReduceLogSum": reduce(.logSum), "ReduceLogSumExp": reduce(.logSumExp),
        "ArgMax": argExtremum(max: true), "ArgMin": argExtremum(max: false),
        "CumSum": { n in CumSumKernel(exclusive: try n.int("exclusive", default: 0) != 0, reverse: try n.int("reverse", default: 0) != 0) },
        "Softmax": softmax(log: false), "LogSoftmax": softmax(log: true),
        "LayerNormalization": normalization(rms: false, defaultEpsilon: 1e-5),
        "RMSNormalization": normalization(rms: true, defaultEpsilon: 1e-5),
        "SimplifiedLayerNormalization": normalization(rms: true, defaultEpsilon: 1e-5),
        "com.microsoft::SimplifiedLayerNormalization": normalization(rms: true, defaultEpsilon: 1e-5),
        "com.microsoft::SkipLayerNormalization": { n in SkipNormalizationKernel(epsilon: try n.float("epsilon", default: 1e-12), rms: false) },
        "com.microsoft::SkipSimplifiedLayerNormalization": { n in SkipNormalizationKernel(epsilon: try n.float("epsilon", default: 1e-12), rms: true) },
        // Linear algebra
        "MatMul": MatMulKernel.make, "Gemm": GemmKernel.make,
        "com.microsoft::MatMulNBits": MatMulNBitsKernel.make,
        // Shapes and data movement
        "Reshape": { n in ReshapeKernel(allowZero: try n.int("allowzero", default: 0) != 0) },
        "Flatten": { n in FlattenKernel(axis: try n.int("axis", default: 1)) },
        "Squeeze": { n in SqueezeKernel(attributeAxes: n.opset < 13 ? try n.ints("axes") : nil) },
        "Unsqueeze": { n in UnsqueezeKernel(attributeAxes: n.opset < 13 ? try n.ints("axes") : nil) },
        "Identity": { _ in IdentityKernel() },
        "Shape": { n in ShapeKernel(start: try n.int("start", default: 0), end: try n.optionalInt("end")) },
        "Size": { _ in SizeKernel() },
        "ConstantOfShape": { n in
            let value = try n.tensor("value") ?? Tensor(shape: [1], values: [Float(0)])
            guard value.count == 1, value.dtype != .string else { throw OpError("value must hold one numeric element") }
            return ConstantOfShapeKernel(value: value)
        },
        "Range": { _ in RangeKernel() },
        "Constant": { n in
            let value = try constantAttributeValue(n)
            return ClosureKernel { _, _ in [value] }
        },
        "Cast": { n in
            guard let to = try n.dtype("to") else { throw OpError("Cast needs the 'to' attribute") }
            return CastKernel(target: to)
        },
        "CastLike": { _ in CastKernel(target: nil) },
        "Transpose": { n in TransposeKernel(perm: try n.ints("perm")) },
        "Slice": { _ in SliceKernel() },
        "Expand": { _ in ExpandKernel() },
        "Concat": { n in
            guard let axis = try n.optionalInt("axis") else { throw OpError("Concat needs the 'axis' attribute") }
            return ConcatKernel(axis: axis)
        },
        "Split": { n in
            SplitKernel(axis: try n.int("axis", default: 0), outputCount: n.outputCount,
                        attributeSplit: n.opset < 13 ? try n.ints("split") : nil, numOutputs: try n.optionalInt("num_outputs"))
        },
        "Gather": { n in GatherKernel(axis: try n.int("axis", default: 0)) },
        "Pad": { n in
            let modeName = try n.string("mode", default: "constant")
            guard let mode = PadKernel.Mode(rawValue: modeName) else { throw OpError("unknown Pad mode '\(modeName)'") }
            return PadKernel(mode: mode, attributePads: n.opset < 11 ? try n.ints("pads") : nil,
                             attributeValue: try n.float("value", default: 0))
        },
        "Tile": { _ in TileKernel() },
        "GatherND": { n in GatherNDKernel(batchDims: try n.int("batch_dims", default: 0)) },
        "ScatterND": { n in ScatterNDKernel(reduction: try scatterReduction(n)) },
        "GatherElements": { n in GatherElementsKernel(axis: try n.int("axis", default: 0)) },
        "ScatterElements": { n in ScatterElementsKernel(axis: try n.int("axis", default: 0), reduction: try scatterReduction(n)) },
        "NonZero": { _ in NonZeroKernel() },
        "Einsum": { n in try EinsumKernel(equation: try n.string("equation", default: "")) },
        "Dropout": { n in DropoutKernel(wantsMask: n.hasOutput(1)) },
        "IsNaN": { _ in FloatClassKernel(test: .nan) },
        "IsInf": { n in
            FloatClassKernel(test: .infinity(negative: try n.int("detect_negative", default: 1) != 0,
                                             positive: try n.int("detect_positive", default: 1) != 0))
        },
        "Trilu": { n in TriluKernel(upper: try n.int("upper", default: 1) != 0) },
        // Quantization
        "QuantizeLinear": { n in
            QuantizeLinearKernel(axis: try n.int("axis", default: 1), blockSize: try n.int("block_size", default: 0),
                                 outputType: try n.dtype("output_dtype").flatMap { $0 == .float ? nil : $0 })
        },
        "DequantizeLinear": { n in
            DequantizeLinearKernel(axis: try n.int("axis", default: 1), blockSize: try n.int("block_size", default: 0))
        },
        "DynamicQuantizeLinear": { _ in DynamicQuantizeLinearKernel() },
        "MatMulInteger": { _ in MatMulIntegerKernel() },
        "QLinearMatMul": { _ in QLinearMatMulKernel() },
    ]
}

extension ExecutionPlan {
    /// Every operator the interpreter runs, as `OpType` (default domain) or
    /// `domain::OpType`.
    public static var supportedOperators: [String] { OpRegistry.supportedOperators }
}
