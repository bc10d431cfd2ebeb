import SQIR

/// What the MatMul/Gemm nodes of a graph are, seen from `quantize`: the float linear layers it
/// can take (float32, float16 or bfloat16 weight matrices), linears whose weights have a float
/// type or form it does not handle yet (float64; a half-precision initializer cast to float at
/// run time), linears whose weights are already
/// int8 (`DequantizeLinear` of an int8 initializer, or `Cast(int8) → Mul(scale)`), and
/// attention MatMuls. The CLI uses it to say why a pipeline did nothing and `inspect` to
/// report already-quantized weights. Reads the graph only.
///
/// ```
/// %w = DequantizeLinear(%w_int8, %w_scale)      // weight-only int8, "DequantizeLinear"
/// %y = MatMul(%x, %w)
/// %c = Cast(%w_int8) {to = 1}                   // weight-only int8, "Cast+Mul"
/// %w = Mul(%c, %w_scale)
/// %y = MatMul(%x, %w)
/// %w = Cast(%w_bf16) {to = 1}                  // bfloat16 cast at run time: not supported yet
/// %y = MatMul(%x, %w)
/// ```
public struct LinearCoverage: Sendable, Equatable {
    /// How an int8 weight reaches its MatMul/Gemm.
    public enum Int8WeightForm: String, Sendable, Codable {
        /// `DequantizeLinear(int8 initializer, scale)`.
        case dequantizeLinear = "DequantizeLinear"
        /// `Mul(Cast(int8 initializer), scale)` (or a Cast alone, the scale applied later).
        case castMul = "Cast+Mul"
    }

    /// One MatMul/Gemm whose weight is already int8.
    public struct QuantizedLayer: Sendable, Equatable, Codable {
        public let node: String
        public let form: Int8WeightForm
        /// Its activation also goes through Q/DQ (a full W8A8 QDQ layer, e.g. sqopt's output).
        public let activationQuantized: Bool
    }

    /// Linear layers `quantize` can take (a constant float32/float16/bfloat16 weight matrix), by node name.
    public var floatLinears: [String] = []
    /// Linears whose weight is a float type or form `quantize` does not take, by that type.
    public var unsupportedFloat: [DType: [String]] = [:]
    /// Linears whose weight is already int8.
    public var quantized: [QuantizedLayer] = []
    /// MatMuls of two computed operands (QKᵀ, PV).
    public var activationMatMuls: [String] = []

    /// Weight-only int8 layers (the activation is float).
    public var weightOnlyInt8: [QuantizedLayer] { quantized.filter { !$0.activationQuantized } }

    public init(_ graph: Graph) {
        for node in graph.nodes where node.isOp("MatMul") || node.isOp("Gemm") {
            guard let x = node.input(0), x.constant == nil, let w = node.input(1) else { continue }
            switch Self.weightSource(w) {
            case .float(let dtype):
                if LinearLayer(node) != nil {
                    floatLinears.append(node.name)
                } else if dtype != .float {
                    // float64, or a half-precision weight cast to float at run time.
                    unsupportedFloat[dtype, default: []].append(node.name)
                }
            case .int8(let form):
                quantized.append(QuantizedLayer(node: node.name, form: form,
                                                activationQuantized: x.producer?.isOp("DequantizeLinear") ?? false))
            case .computed:
                if isActivationMatMul(node) { activationMatMuls.append(node.name) }
            }
        }
    }

    private enum WeightSource {
        case float(DType)
        case int8(Int8WeightForm)
        case computed
    }

    /// Ops a weight may pass through unchanged in meaning on its way to the MatMul.
    private static let transparent: Set<String> = ["Identity", "Transpose", "Reshape", "Squeeze", "Unsqueeze"]

    /// Where a weight operand comes from: a constant (possibly cast or reshaped) float of some
    /// type, an int8 constant through DequantizeLinear or Cast(+Mul), or a computed value.
    private static func weightSource(_ weight: Value) -> WeightSource {
        var v = weight
        for _ in 0..<8 {
            if let t = constantTensor(v) {
                return t.dtype.isFloatingPoint ? .float(t.dtype) : .computed
            }
            guard let p = v.producer, p.domain.isEmpty, let input = p.input(0) else { return .computed }
            switch p.opType {
            case let op where transparent.contains(op):
                v = input
            case "DequantizeLinear":
                return isInt8Constant(input) ? .int8(.dequantizeLinear) : .computed
            case "Cast":
                if isInt8Constant(input) { return .int8(.castMul) }
                if let t = constantTensor(input), t.dtype.isFloatingPoint { return .float(t.dtype) }
                v = input
            case "Mul":
                // Mul(Cast(int8), scale), either operand order.
                for operand in p.inputs.compactMap({ $0 }) {
                    if let cast = operand.producer, cast.isOp("Cast"), let q = cast.input(0), isInt8Constant(q) {
                        return .int8(.castMul)
                    }
                }
                return .computed
            default:
                return .computed
            }
        }
        return .computed
    }

    /// The tensor of an initializer or of a `Constant` node's output.
    private static func constantTensor(_ v: Value) -> Tensor? {
        if let t = v.constant { return t }
        if let p = v.producer, p.isOp("Constant") { return p[attribute: "value"]?.tensor }
        return nil
    }

    private static func isInt8Constant(_ v: Value) -> Bool {
        guard let t = constantTensor(v) else { return false }
        return t.dtype == .int8 || t.dtype == .uint8
    }

    /// Node names for a message: the first `limit`, then "and N more".
    public static func list(_ names: [String], limit: Int = 3) -> String {
        let shown = names.prefix(limit).map { "'\($0)'" }.joined(separator: ", ")
        return names.count > limit ? "\(shown) and \(names.count - limit) more" : shown
    }

    /// Why `quantize` found no linear to take, one reason per kind of MatMul/Gemm present
    /// (`skipped`: the float linears the pass left float on purpose, with its reason).
    public func quantizeNoopReasons(skipped: [String: String] = [:]) -> [String] {
        var reasons: [String] = []
        if !quantized.isEmpty {
            reasons.append("weights already quantized: \(quantized.count) MatMul/Gemm read int8 weights "
                + "(\(Set(quantized.map(\.form.rawValue)).sorted().joined(separator: ", "))): \(Self.list(quantized.map(\.node))); "
                + "sqopt does not re-quantize int8 weights")
        }
        for (dtype, nodes) in unsupportedFloat.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            reasons.append("float type \(dtype.longName) is not supported yet: \(nodes.count) MatMul/Gemm have \(dtype.longName) weights "
                + "(\(Self.list(nodes))); only constant float32, float16 and bfloat16 weight matrices are smoothed and quantized")
        }
        let leftFloat = floatLinears.filter { skipped[$0] != nil }
        if !leftFloat.isEmpty {
            let why = Set(leftFloat.compactMap { skipped[$0] }).sorted().joined(separator: "; ")
            reasons.append("\(leftFloat.count) float linear(s) left float on purpose (\(why)): \(Self.list(leftFloat))")
        }
        if reasons.isEmpty {
            reasons.append("no float linear found (a MatMul/Gemm with a constant float32/float16/bfloat16 weight matrix)"
                + (activationMatMuls.isEmpty ? "" : "; \(activationMatMuls.count) attention MatMul(s) need quantize{bmm=true}"))
        }
        return reasons
    }
}

extension DType {
    /// The ONNX spelling users know (`float16`, `bfloat16`).
    public var longName: String {
        switch self {
        case .float: return "float32"
        case .float16: return "float16"
        case .bfloat16: return "bfloat16"
        case .double: return "float64"
        default: return shortName
        }
    }
}
