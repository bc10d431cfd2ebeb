import SQIR

/// The decomposed LayerNorm and RMSNorm subgraphs torch.onnx / HF exporters write, as
/// patterns. Captures: `hs` (the normalized input, after any input Cast), `eps`, `gamma`,
/// `beta`, `out_cast` (a Cast between the normalization and the γ multiply), `d` (LN: x - mean).
enum NormPatterns {
    /// ReduceMean over the last axis only, keepdims=1; axes as attribute (< 18) or input.
    static func meanOverLastAxis(_ operand: Pattern) -> Pattern {
        Pattern.oneOf(.op("ReduceMean", [operand]), .op("ReduceMean", [operand, .constant()]))
            .where(node: reducesLastAxisOnly)
    }

    static func reducesLastAxisOnly(_ node: Node) -> Bool {
        guard (node.int("keepdims") ?? 1) == 1 else { return false }
        guard let axes = node.ints("axes") ?? node.input(1)?.knownConstant?.int64Values()?.map(Int.init),
              axes.count == 1 else { return false }
        if axes[0] == -1 { return true }
        guard let input = node.input(0), let rank = rank(of: input) else { return false }
        return axes[0] == rank - 1
    }

    /// The rank of `value`: its type's, else (for the elementwise ops inside a norm) the
    /// largest rank among its producer's operands.
    static func rank(of value: Value, depth: Int = 6) -> Int? {
        if let rank = value.type?.rank { return rank }
        guard depth > 0, let producer = value.producer,
              ["Pow", "Mul", "Sub", "Add", "Div", "Cast", "Sqrt"].contains(producer.opType) else { return nil }
        let ranks = producer.inputs.compactMap { $0.flatMap { rank(of: $0, depth: depth - 1) } }
        return ranks.max()
    }

    /// v², written as Pow(v, 2) or Mul(v, v).
    static func square(_ name: String) -> Pattern {
        .oneOf(.op("Pow", [.any(name), .scalar(2)]), .op("Mul", [.any(name), .any(name)]))
    }

    /// Sqrt(mean(square) + eps).
    static func rootMeanSquare(of name: String) -> Pattern {
        .op("Sqrt", [varianceWithEpsilon(of: name)])
    }

    static func varianceWithEpsilon(of name: String) -> Pattern {
        .op("Add", [meanOverLastAxis(square(name)), .constant("eps") { $0.count == 1 && $0.dtype.isFloatingPoint }],
            commutative: true)
    }

    /// An optional Cast after the normalization, captured as `out_cast`.
    static func optionalOutputCast(_ inner: Pattern) -> Pattern {
        .oneOf(Pattern.op("Cast", [inner]).captured("out_cast"), inner)
    }

    /// γ: a floating-point constant (rank and size checked by the rewrite).
    static let gamma = Pattern.constant("gamma") { $0.dtype.isFloatingPoint }
    static let beta = Pattern.constant("beta") { $0.dtype.isFloatingPoint }

    // MARK: LayerNorm

    /// d = hs - mean(hs)
    static let centred = Pattern.op("Sub", [.any("hs"), meanOverLastAxis(.any("hs"))]).captured("d")

    /// (hs - mean) / sqrt(var + eps), or times its Reciprocal.
    static let layerNormalized = Pattern.oneOf(
        .op("Div", [centred, rootMeanSquare(of: "d")]),
        .op("Mul", [centred, .op("Reciprocal", [rootMeanSquare(of: "d")])], commutative: true))

    /// normalized · γ (the Mul-rooted form, β absent or handled by `layerNormWithBeta`).
    static let layerNormScaled = Pattern.op("Mul", [optionalOutputCast(layerNormalized), gamma], commutative: true)

    /// normalized · γ + β
    static let layerNormWithBeta = Pattern.op("Add", [layerNormScaled, beta], commutative: true)

    // MARK: RMSNorm

    /// hs / sqrt(mean(hs²) + eps) in the forms exporters write: Mul(hs, Reciprocal(root)),
    /// Mul(hs, Div(1, root)), Div(hs, root), Mul(hs, Pow(mean + eps, -0.5)).
    static let rmsNormalized = Pattern.oneOf(
        .op("Mul", [.any("hs"), .op("Reciprocal", [rootMeanSquare(of: "hs")])], commutative: true),
        .op("Mul", [.any("hs"), .op("Div", [.scalar(1), rootMeanSquare(of: "hs")])], commutative: true),
        .op("Div", [.any("hs"), rootMeanSquare(of: "hs")]),
        .op("Mul", [.any("hs"), .op("Pow", [varianceWithEpsilon(of: "hs"), .scalar(-0.5)])], commutative: true))

    /// normalized · γ
    static let rmsNormScaled = Pattern.op("Mul", [optionalOutputCast(rmsNormalized), gamma], commutative: true)

    /// True when `value` is hs - mean(hs): an RMS match on it is really a LayerNorm.
    static func isCentred(_ value: Value) -> Bool {
        PatternMatcher.match(centred, value: value) != nil
    }

    /// True when `value` feeds exactly one node, an Add with a constant (the β of a LayerNorm).
    static func feedsBetaAdd(_ value: Value) -> Bool {
        guard value.uses.count == 1, let user = value.uses.first?.node, user.isOp("Add") else { return false }
        return user.inputs.contains { $0 !== value && ($0?.knownConstant.map { $0.dtype.isFloatingPoint } ?? false) }
    }
}
