import SQIR

/// A linear layer: a `MatMul(x, W)` or `Gemm(x, W)` whose weight operand is a constant
/// float matrix (float32, float16 or bfloat16) and whose activation operand is not constant.
/// Weights of the half types are read widened to float32 and rewritten in their own type.
///
/// The weight is viewed as `[K, N]` (input channel k, output channel n); a Gemm with
/// `transB = 1` stores it as `[N, K]` and `transposed` is true. `K` is the channel axis the
/// activation's last dim contracts over, the one SmoothQuant scales.
public struct LinearLayer {
    public let node: Node
    /// The activation operand (input 0).
    public let activation: Value
    /// The weight operand (input 1), a constant.
    public let weight: Value
    public let weightTensor: Tensor
    /// Weight stored `[N, K]` (Gemm `transB = 1`).
    public let transposed: Bool
    public let inputChannels: Int
    public let outputChannels: Int

    /// The weight's element type (float, float16 or bfloat16); scales and rewritten weights use it.
    public var floatType: DType { weightTensor.dtype }

    /// Index of the weight's output-channel axis in its stored layout (for per-axis Q/DQ).
    public var outputChannelAxis: Int { transposed ? 0 : 1 }

    /// Matches `node` or returns nil (with no side effects).
    public init?(_ node: Node) {
        let isMatMul = node.isOp("MatMul"), isGemm = node.isOp("Gemm")
        guard isMatMul || isGemm,
              let x = node.input(0), x.constant == nil,
              let w = node.input(1), let t = w.constant, t.dtype.isSmoothableFloat, t.rank == 2
        else { return nil }
        if isGemm && (node.int("transA") ?? 0) != 0 { return nil }
        let transposed = isGemm && (node.int("transB") ?? 0) != 0
        self.node = node
        self.activation = x
        self.weight = w
        self.weightTensor = t
        self.transposed = transposed
        self.inputChannels = transposed ? t.shape[1] : t.shape[0]
        self.outputChannels = transposed ? t.shape[0] : t.shape[1]
    }

    /// All linear layers of `graph`, in node order.
    public static func all(in graph: Graph) -> [LinearLayer] {
        graph.nodes.compactMap(LinearLayer.init)
    }

    /// max |W[k, :]| for every input channel k.
    public func inputChannelAbsMax() -> [Float] {
        var out = [Float](repeating: 0, count: inputChannels)
        let (k, n) = (inputChannels, outputChannels)
        weightTensor.withFloatElements { w in
            for i in 0..<k {
                var m: Float = 0
                for j in 0..<n {
                    let v = Swift.abs(transposed ? w[j * k + i] : w[i * n + j])
                    if v > m { m = v }
                }
                out[i] = m
            }
        }
        return out
    }

    /// max |W[:, n]| for every output channel n (the per-channel weight range).
    public func outputChannelAbsMax() -> [Float] {
        var out = [Float](repeating: 0, count: outputChannels)
        let (k, n) = (inputChannels, outputChannels)
        weightTensor.withFloatElements { w in
            for i in 0..<k {
                for j in 0..<n {
                    let v = Swift.abs(transposed ? w[j * k + i] : w[i * n + j])
                    if v > out[j] { out[j] = v }
                }
            }
        }
        return out
    }

    /// The weight with input channel k multiplied by `factors[k]`, in the stored layout and
    /// element type.
    public func weightScalingInputChannels(by factors: [Float]) -> Tensor {
        weightScaled { i, _ in factors[i] }.tensor
    }

    /// The same, with the number of elements clamped to the float type's range (float16:
    /// ±65504) instead of overflowing.
    public func weightScalingInputChannelsCountingClamps(by factors: [Float]) -> (tensor: Tensor, clamped: Int) {
        weightScaled { i, _ in factors[i] }
    }

    /// The weight with element (input channel i, output channel j) multiplied by
    /// `factor(i, j)`, in the stored layout; computed in float32, written in `floatType`.
    private func weightScaled(_ factor: (Int, Int) -> Float) -> (tensor: Tensor, clamped: Int) {
        let (k, n) = (inputChannels, outputChannels)
        let scaled = Tensor.make(Float.self, shape: weightTensor.shape) { out in
            weightTensor.withFloatElements { w in
                for i in 0..<k {
                    for j in 0..<n {
                        let idx = transposed ? j * k + i : i * n + j
                        out[idx] = w[idx] * factor(i, j)
                    }
                }
            }
        }
        guard floatType != .float else { return (scaled, 0) }
        return Tensor.narrowing(scaled.elements(as: Float.self), shape: weightTensor.shape, to: floatType)
    }
}

extension LinearLayer {
    /// The weight with output channel n multiplied by `factors[n]`, in the stored layout and
    /// element type.
    public func weightScalingOutputChannels(by factors: [Float]) -> Tensor {
        weightScaled { _, j in factors[j] }.tensor
    }

    /// The same, with the number of clamped elements.
    public func weightScalingOutputChannelsCountingClamps(by factors: [Float]) -> (tensor: Tensor, clamped: Int) {
        weightScaled { _, j in factors[j] }
    }
}

/// True for an attention batched MatMul: a `MatMul` whose two operands are both computed
/// from the graph's inputs, such as `QKᵀ` and `PV`. An operand computed from constants only
/// (a weight cast from bfloat16, or dequantized from int8: `Mul(Cast(W_int8), scale)`) is a
/// weight, not an activation: the interpreter folds it when it lowers the model.
public func isActivationMatMul(_ node: Node) -> Bool {
    guard node.isOp("MatMul"), let a = node.input(0), let b = node.input(1) else { return false }
    return !isConstantDerived(a) && !isConstantDerived(b)
}

/// True when `value` is a constant or computed from constants only, within a few nodes
/// (weight chains are short: Cast, Mul by a scale, DequantizeLinear, Transpose, Reshape).
/// Longer chains, graph inputs and nodes with subgraphs count as computed.
public func isConstantDerived(_ value: Value, depth: Int = 6) -> Bool {
    if value.constant != nil { return true }
    guard depth > 0, let producer = value.producer, producer.subgraphs.isEmpty else { return false }
    if producer.isOp("Constant") { return true }
    let operands = producer.inputs.compactMap { $0 }
    return !operands.isEmpty && operands.allSatisfy { isConstantDerived($0, depth: depth - 1) }
}

extension Graph {
    /// Removes those of `replaced` that are initializers no longer used by any node (and not
    /// graph inputs or outputs): the constants a rewrite just swapped out. Other dead values are
    /// left to `dce`.
    func dropReplacedInitializers(_ replaced: [Value]) {
        let candidates = Set(replaced.filter { !$0.hasUses }.map(ObjectIdentifier.init))
        guard !candidates.isEmpty else { return }
        let kept = Set((inputs + outputs).map(ObjectIdentifier.init))
        initializers.removeAll { candidates.contains(ObjectIdentifier($0)) && !kept.contains(ObjectIdentifier($0)) }
    }
}
