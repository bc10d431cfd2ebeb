import SQIR

/// SmoothQuant's quantization levels (paper Table 2; weights per-tensor in all three).
public enum QuantPolicy: String, Sendable, CaseIterable, Codable {
    /// Per-token dynamic activations.
    case O1
    /// Per-tensor dynamic activations.
    case O2
    /// Per-tensor static activations (scales from calibration).
    case O3
}

/// Weight scale granularity.
public enum WeightGranularity: String, Sendable, CaseIterable, Codable {
    case perTensor = "per-tensor"
    case perChannel = "per-channel"
}

/// The ONNX form `quantize` writes: the same int8 codes either way, laid out for a consumer.
public enum QuantTarget: String, Sendable, CaseIterable, Codable {
    /// Portable QDQ: int8 activations with zero point 0 (TensorRT, onnxruntime, any QDQ reader).
    case qdq
    /// onnxruntime's CPU integer kernels (u8 activations × s8 weights): activations as uint8
    /// with zero point 128, which holds exactly the symmetric codes shifted by 128
    /// (`clamp(round(x/Δ), -128, 127) + 128`). Static scales stay on the Q/DQ pair (onnxruntime
    /// fuses `DQ → MatMul ← DQ(W)` into `MatMulIntegerToFloat`); a dynamic scale `Δ` (O1's per
    /// token, O2's per tensor) is applied around a scale-1 Q/DQ pair: `Q(x / Δ, 1, 128)`, and
    /// the product is multiplied by `Δ` after the MatMul, so the fused kernel still applies.
    case onnxruntime
}

/// What `W8A8Quantizer` does: the `quantize` pass's options, typed. The defaults are the
/// pass's declared ones (`Quantize.policyOption` ...), so `QuantizeOptions()` quantizes as
/// `quantize` with no options does.
public struct QuantizeOptions: Sendable, Equatable {
    public var policy: QuantPolicy
    public var weights: WeightGranularity
    /// Also quantize the attention batched MatMuls (QKᵀ, PV).
    public var bmm: Bool
    /// Regular expression; MatMul/Gemm nodes whose name matches stay float (nil: none, the
    /// pass's empty `exclude`).
    public var exclude: String?
    /// Quantize the LM head too (by default it stays float).
    public var lmHead: Bool
    /// The ONNX form of the written file.
    public var target: QuantTarget

    public init(policy: QuantPolicy = Quantize.defaultPolicy,
                weights: WeightGranularity = Quantize.weightsOption.defaultValue,
                bmm: Bool = Quantize.bmmOption.defaultValue,
                exclude: String? = nil,
                lmHead: Bool = Quantize.lmHeadOption.defaultValue,
                target: QuantTarget = Quantize.targetOption.defaultValue) {
        self.policy = policy
        self.weights = weights
        self.bmm = bmm
        self.exclude = exclude
        self.lmHead = lmHead
        self.target = target
    }
}

/// What `quantize` did.
public struct QuantizeReport: Codable, Sendable, Equatable {
    /// Quantized linear layers (node names, in order).
    public var linears: [String] = []
    /// Quantized attention batched MatMuls.
    public var bmms: [String] = []
    /// MatMul/Gemm nodes left in float, with the reason.
    public var skipped: [String: String] = [:]
    /// Q→DQ pairs inserted on activations (shared by consumers of one value).
    public var activationQDQ = 0
}

/// Rewrites a graph into W8A8 QDQ form (see `QDQBuilder` for the encodings). Needs
/// calibration statistics for O3; O1/O2 compute scales in the graph. The caller raises the
/// model's opset to ≥ 21 (the `quantize` pass runs `upgrade-opset`).
public struct W8A8Quantizer {
    public var options: QuantizeOptions
    /// Static (O3) ranges by activation name that replace the calibrated max |x|
    /// (`quantize{calibration=percentile|mse}`).
    public var staticRanges: [String: Float] = [:]
    /// Per-tensor weight ranges by weight name that replace max |W| (`weight-calibration=mse`).
    public var weightRanges: [String: Float] = [:]
    /// Linear layers (node names) quantized with another policy than `options.policy`
    /// (`quantize{policy=auto}`'s per-layer plan).
    public var layerPolicies: [String: QuantPolicy] = [:]
    /// Linear layers (node names) left float, with the reason (`policy=auto`).
    public var floatLayers: [String: String] = [:]

    public init(options: QuantizeOptions) {
        self.options = options
    }

    public func run(on graph: Graph, statistics: CalibrationStatistics?) throws -> QuantizeReport {
        var report = QuantizeReport()
        let excluded: Regex<AnyRegexOutput>?
        do {
            excluded = try options.exclude.map { try Regex($0) }
        } catch {
            throw IRError(reason: "quantize: exclude '\(options.exclude ?? "")' is not a valid regular expression: \(error)")
        }
        func isExcluded(_ node: Node) -> Bool {
            guard let excluded else { return false }
            return (try? excluded.firstMatch(in: node.name)) != nil
        }

        // Collect.
        let heads = options.lmHead ? [] : Set(Self.outputHeads(in: graph).map(ObjectIdentifier.init))
        var linears: [LinearLayer] = []
        for layer in LinearLayer.all(in: graph) {
            if isExcluded(layer.node) { report.skipped[layer.node.name] = "excluded"; continue }
            if heads.contains(ObjectIdentifier(layer.node)) { report.skipped[layer.node.name] = "output head (lm-head=false)"; continue }
            if let reason = floatLayers[layer.node.name] { report.skipped[layer.node.name] = reason; continue }
            linears.append(layer)
        }
        var bmms: [Node] = []
        if options.bmm {
            for node in graph.nodes where isActivationMatMul(node) {
                if isExcluded(node) { report.skipped[node.name] = "excluded"; continue }
                bmms.append(node)
            }
        }

        var operands: [(node: Node, index: Int, value: Value, mode: ActivationQuantMode, floatType: DType)] = []
        var operandTypes: [ObjectIdentifier: DType] = [:]
        for layer in linears {
            let mode = try mode(for: layer.activation, role: .rows(contracted: layer.inputChannels), statistics, layer.node,
                                policy: layerPolicies[layer.node.name] ?? options.policy)
            // MatMul/Gemm operands share one type: the activation's is the weight's.
            operands.append((layer.node, 0, layer.activation, mode, layer.floatType))
        }
        for node in bmms {
            guard let a = node.input(0), let b = node.input(1) else { continue }
            let contracted = Self.knownDim(a, fromEnd: 1, statistics) ?? Self.knownDim(b, fromEnd: 2, statistics)
            let type = Self.floatType(of: a) ?? Self.floatType(of: b) ?? .float
            operandTypes[ObjectIdentifier(node)] = type
            operands.append((node, 0, a, try mode(for: a, role: .rows(contracted: contracted), statistics, node), type))
            operands.append((node, 1, b, try mode(for: b, role: .columns(contracted: contracted), statistics, node), type))
        }

        // Mutate. One weight at a time, each float weight dropped as soon as its int8 form
        // replaces it: only the layer's node and float type are kept, so the float weights
        // never all stay alive next to the int8 ones (peak memory of a large model).
        let builder = QDQBuilder(graph: graph, target: options.target)
        let perChannel = options.weights == .perChannel
        let linearNodes = linears.map { (node: $0.node, floatType: $0.floatType) }
        var pending = Array(linears.reversed())
        linears = []
        while let layer = pending.popLast() {
            let scaleType: DType? = Float32Islands.needed(for: layer.floatType) ? .float : nil
            layer.node.setInput(1, builder.dequantizedWeight(layer, perChannel: perChannel, floatType: scaleType,
                                                             absMax: perChannel ? nil : weightRanges[layer.weight.name]))
            graph.dropReplacedInitializers([layer.weight])
        }
        var islands = Float32Islands(graph: graph)
        var shared: [SharedKey: QuantizedOperand] = [:]
        let position = Dictionary(graph.nodes.enumerated().map { (ObjectIdentifier($1), $0) }, uniquingKeysWith: { a, _ in a })
        var firstConsumer: [SharedKey: Node] = [:]
        for op in operands {
            let key = SharedKey(value: ObjectIdentifier(op.value), mode: op.mode)
            if let current = firstConsumer[key],
               (position[ObjectIdentifier(current)] ?? 0) <= (position[ObjectIdentifier(op.node)] ?? 0) { continue }
            firstConsumer[key] = op.node
        }
        // Operands read only by MatMuls with a weight: the onnxruntime target's form without a Div.
        let linearMatMuls = Set(linearNodes.filter { $0.node.isOp("MatMul") }.map { ObjectIdentifier($0.node) })
        var linearOnly: [SharedKey: Bool] = [:]
        for op in operands {
            let key = SharedKey(value: ObjectIdentifier(op.value), mode: op.mode)
            linearOnly[key] = (linearOnly[key] ?? true) && linearMatMuls.contains(ObjectIdentifier(op.node))
        }
        var postScales: [(node: Node, scale: Value)] = []
        for op in operands {
            let key = SharedKey(value: ObjectIdentifier(op.value), mode: op.mode)
            let operand: QuantizedOperand
            if let existing = shared[key] {
                operand = existing
            } else {
                let anchor = firstConsumer[key] ?? op.node
                if Float32Islands.needed(for: op.floatType) {
                    operand = builder.quantizeDequantize(islands.widened(op.value, before: anchor), mode: op.mode,
                                                         floatType: .float, linearOnly: linearOnly[key] ?? false, before: anchor)
                } else {
                    operand = builder.quantizeDequantize(op.value, mode: op.mode, floatType: op.floatType,
                                                         linearOnly: linearOnly[key] ?? false, before: anchor)
                }
                shared[key] = operand
                report.activationQDQ += 1
            }
            op.node.setInput(op.index, operand.value)
            if let scale = operand.postScale { postScales.append((op.node, scale)) }
        }
        for (node, type) in linearNodes.map({ ($0.node, $0.floatType) }) + bmms.map({ ($0, operandTypes[ObjectIdentifier($0)] ?? .float) })
        where Float32Islands.needed(for: type) {
            islands.close(node, narrowingTo: type)
        }
        // After the islands: the Mul by Δ goes between the product and the island's Cast.
        for (node, scale) in postScales {
            builder.scaleOutput(of: node, by: scale)
        }
        report.linears = linearNodes.map(\.node.name)
        report.bmms = bmms.map(\.name)
        return report
    }

    private struct SharedKey: Hashable {
        let value: ObjectIdentifier
        let mode: ActivationQuantMode
    }

    private enum OperandRole {
        /// Contracted over the last axis (a linear's input, QKᵀ's Q, PV's P).
        case rows(contracted: Int?)
        /// Contracted over the second-to-last axis (QKᵀ's Kᵀ, PV's V).
        case columns(contracted: Int?)
    }

    private func mode(for x: Value, role: OperandRole, _ statistics: CalibrationStatistics?, _ node: Node,
                      policy: QuantPolicy? = nil) throws -> ActivationQuantMode {
        switch policy ?? options.policy {
        case .O3:
            guard let absMax = staticRanges[x.name] ?? statistics?.staticAbsMax(x.name) else {
                throw IRError(node: node, reason: "quantize{policy=O3} needs calibration statistics for '\(x.name)' (run calibrate first, or --load-calib)")
            }
            return .staticPerTensor(scale: Int8Quantization.activationScale(absMax: absMax))
        case .O2:
            return .dynamicPerTensor
        case .O1:
            switch role {
            case .rows(let contracted?): return .dynamicBlocked(axis: -1, blockSize: contracted)
            case .columns(let contracted?): return .dynamicBlocked(axis: -2, blockSize: contracted)
            default: return .dynamicPerTensor
            }
        }
    }

    /// The float element type of a computed value: its declared type, else the first float
    /// type found walking up through producers' inputs (a few steps: attention operands come out
    /// of Reshape/Transpose/Mul chains from a linear). nil when nothing says.
    static func floatType(of value: Value) -> DType? {
        var frontier = [value]
        var seen = Set<ObjectIdentifier>()
        while !frontier.isEmpty, seen.count < 64 {
            let v = frontier.removeFirst()
            guard seen.insert(ObjectIdentifier(v)).inserted else { continue }
            if let t = v.type?.dtype ?? v.constant?.dtype {
                if t.isSmoothableFloat { return t }
                continue
            }
            guard let producer = v.producer else { continue }
            if producer.isOp("Cast") {
                if let to = producer.int("to").flatMap({ DType(rawValue: Int32($0)) }), to.isSmoothableFloat { return to }
                continue
            }
            frontier += producer.inputs.compactMap { $0 }
        }
        return nil
    }

    /// A dim of `v` counted from the end (1 = last) when it is static: from the value's type,
    /// else from the dims calibration saw (when they never varied).
    static func knownDim(_ v: Value, fromEnd offset: Int, _ statistics: CalibrationStatistics?) -> Int? {
        if let dims = v.type?.dims, dims.count >= offset, let d = dims[dims.count - offset].value { return d }
        if let dims = statistics?[v.name]?.dims, dims.count >= offset, dims[dims.count - offset] > 0 {
            return dims[dims.count - offset]
        }
        return nil
    }

    /// Linear layers whose output reaches a graph output through only pass-through steps
    /// (bias Add, Reshape, Cast, Transpose, scaling by a constant, ...): the LM head or a
    /// model's final projection, which stays float by default.
    public static func outputHeads(in graph: Graph) -> [Node] {
        let outputs = Set(graph.outputs.map(ObjectIdentifier.init))
        let passThrough: Set<String> = ["Identity", "Reshape", "Cast", "Transpose", "Squeeze", "Unsqueeze", "Flatten"]
        let withConstant: Set<String> = ["Add", "Sub", "Mul", "Div"]
        var heads: [Node] = []
        for layer in LinearLayer.all(in: graph) {
            var v = layer.node.output(0)
            while let current = v {
                if outputs.contains(ObjectIdentifier(current)) { heads.append(layer.node); break }
                guard current.uses.count == 1, let next = current.uses.first?.node, next.domain.isEmpty else { break }
                if passThrough.contains(next.opType) && next.input(0) === current {
                    v = next.output(0)
                } else if withConstant.contains(next.opType),
                          next.inputs.contains(where: { $0 !== current && $0?.constant != nil }) {
                    v = next.output(0)
                } else {
                    break
                }
            }
        }
        return heads
    }
}
