import SQIR

/// The evaluator `fold-constants` uses until the interpreter's kernels are wired in: shape
/// arithmetic (Shape, Gather, Unsqueeze, Squeeze, Concat, Reshape, Slice, Range, ...) and
/// simple elementwise math, exact for integers and IEEE-exact for +, -, *, /, sqrt on floats.
public struct BuiltinConstantEvaluator: ConstantEvaluator {
    /// Outputs larger than this are not computed.
    public var maxOutputElements: Int

    public init(maxOutputElements: Int = 1 << 22) {
        self.maxOutputElements = maxOutputElements
    }

    static let unaryFloat: [String: @Sendable (Double) -> Double] = [
        "Sqrt": { $0.squareRoot() }, "Reciprocal": { 1 / $0 }, "Floor": { $0.rounded(.down) },
        "Ceil": { $0.rounded(.up) }, "Relu": { max($0, 0) }, "Round": { $0.rounded(.toNearestOrEven) },
    ]

    public func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor]? {
        guard node.domain.isEmpty else { return nil }
        if node.opType == "Constant" { return node.output(0)?.knownConstant.map { [$0] } }
        var arrays: [DenseArray?] = []
        for input in inputs {
            guard let input else { arrays.append(nil); continue }
            guard let array = DenseArray(input) else { return nil }
            arrays.append(array)
        }
        guard let results = try compute(node, arrays, opset: opset) else { return nil }
        var tensors: [Tensor] = []
        for r in results {
            guard r.count <= maxOutputElements, let t = r.tensor() else { return nil }
            tensors.append(t)
        }
        return tensors
    }

    private func compute(_ node: Node, _ x: [DenseArray?], opset: Int) throws -> [DenseArray]? {
        let a = x.first ?? nil
        switch node.opType {
        case "Identity": return a.map { [$0] }
        case "Cast":
            guard let a, let raw = node.int("to"), let to = DType(rawValue: Int32(truncatingIfNeeded: raw)) else { return nil }
            return a.cast(to: to).map { [$0] }
        case "CastLike":
            guard let a, x.count > 1, let like = x[1] else { return nil }
            return a.cast(to: like.dtype).map { [$0] }
        case "Shape":
            guard let a else { return nil }
            return [ShapeKernels.shape(of: a.shape, start: node.int("start"), end: node.int("end"))]
        case "Size":
            guard let a else { return nil }
            return [DenseArray(dtype: .int64, shape: [], storage: .ints([Int64(a.count)]))]
        case "Neg", "Abs":
            guard let a else { return nil }
            let negate = node.opType == "Neg"
            switch a.storage {
            case .ints(let v): return [a.with(shape: a.shape, storage: .ints(v.map { negate ? 0 &- $0 : ($0 < 0 ? 0 &- $0 : $0) }))]
            case .floats(let v): return [a.with(shape: a.shape, storage: .floats(v.map { negate ? -$0 : abs($0) }))]
            }
        case "Not":
            guard let a, let v = a.ints else { return nil }
            return [a.with(shape: a.shape, storage: .ints(v.map { $0 == 0 ? 1 : 0 }))]
        case let op where Self.unaryFloat[op] != nil:
            guard let a, a.dtype.isFloatingPoint, let f = Self.unaryFloat[op] else { return nil }
            return [a.with(shape: a.shape, storage: .floats(a.floats.map(f)))]
        case "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum",
             "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor":
            let operands = x.compactMap { $0 }
            guard operands.count == x.count, var result = operands.first else { return nil }
            for b in operands.dropFirst() {
                guard let next = try ElementwiseKernels.binary(node.opType, result, b, maxElements: maxOutputElements) else { return nil }
                result = next
            }
            return [result]
        case "Where":
            guard x.count == 3, let c = x[0], let t = x[1], let f = x[2] else { return nil }
            return ElementwiseKernels.select(c, t, f, maxElements: maxOutputElements).map { [$0] }
        case "Gather":
            guard x.count == 2, let a, let indices = x[1] else { return nil }
            return try ShapeKernels.gather(a, indices, axis: node.int("axis") ?? 0, node: node,
                                           maxElements: maxOutputElements).map { [$0] }
        case "Unsqueeze", "Squeeze":
            guard let a else { return nil }
            let axes = node.ints("axes") ?? (x.count > 1 ? x[1]?.ints?.map(Int.init) : nil)
            let shape = node.opType == "Unsqueeze"
                ? ShapeKernels.unsqueezedShape(a.shape, axes: axes ?? [])
                : ShapeKernels.squeezedShape(a.shape, axes: axes)
            return shape.map { [a.with(shape: $0, storage: a.storage)] }
        case "Reshape":
            guard x.count == 2, let a, let target = x[1]?.ints else { return nil }
            let shape = ShapeKernels.reshapedShape(a.shape, target, allowZero: node.int("allowzero") == 1)
            return shape.map { [a.with(shape: $0, storage: a.storage)] }
        case "Flatten":
            guard let a, let axis = ShapeMath.axis(node.int("axis") ?? 1, rank: a.shape.count + 1) else { return nil }
            let outer = a.shape[..<axis].reduce(1, *)
            return [a.with(shape: [outer, a.count / max(outer, 1)], storage: a.storage)]
        case "Expand":
            guard x.count == 2, let a, let target = x[1]?.ints,
                  target.allSatisfy({ $0 >= 0 }), let shape = ShapeMath.broadcast([a.shape, target.map(Int.init)]),
                  let count = checkedElementCount(shape), count <= maxOutputElements else { return nil }
            return [a.take(ShapeMath.broadcastIndices(from: a.shape, to: shape), shape: shape)]
        case "Concat":
            let parts = x.compactMap { $0 }
            guard parts.count == x.count, let axis = node.int("axis") else { return nil }
            return ShapeKernels.concat(parts, axis: axis).map { [$0] }
        case "Transpose":
            guard let a else { return nil }
            let perm = node.ints("perm") ?? Array((0..<a.shape.count).reversed())
            return ShapeKernels.transpose(a, perm: perm).map { [$0] }
        case "Slice":
            guard let a else { return nil }
            return ShapeKernels.slice(a, node: node, inputs: x, opset: opset).map { [$0] }
        case "Range":
            guard x.count == 3, let start = x[0], let limit = x[1], let delta = x[2] else { return nil }
            return ShapeKernels.range(start, limit, delta, maxElements: maxOutputElements).map { [$0] }
        case "ConstantOfShape":
            guard let a, let dims = a.ints, dims.allSatisfy({ $0 >= 0 }) else { return nil }
            let shape = dims.map(Int.init)
            guard let count = checkedElementCount(shape), count <= maxOutputElements else { return nil }
            let fill = node[attribute: "value"]?.tensor.flatMap(DenseArray.init)
                ?? DenseArray(dtype: .float, shape: [1], storage: .floats([0]))
            return [fill.take([Int](repeating: 0, count: count), shape: shape)]
        default:
            return nil
        }
    }
}

/// Broadcasting elementwise arithmetic and comparisons.
enum ElementwiseKernels {
    static func binary(_ op: String, _ a: DenseArray, _ b: DenseArray, maxElements: Int) throws -> DenseArray? {
        guard let shape = ShapeMath.broadcast([a.shape, b.shape]),
              let count = checkedElementCount(shape), count <= maxElements else { return nil }
        let ia = ShapeMath.broadcastIndices(from: a.shape, to: shape)
        let ib = ShapeMath.broadcastIndices(from: b.shape, to: shape)
        let comparison = ["Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"].contains(op)
        let logical = ["And", "Or", "Xor"].contains(op)
        if case .ints(let x) = a.storage, case .ints(let y) = b.storage {
            var out = [Int64](repeating: 0, count: ia.count)
            for i in 0..<ia.count {
                let p = x[ia[i]], q = y[ib[i]]
                switch op {
                case "Add", "Sum": out[i] = p &+ q
                case "Sub": out[i] = p &- q
                case "Mul": out[i] = p &* q
                case "Div":
                    let (quotient, overflow) = p.dividedReportingOverflow(by: q)
                    guard q != 0, !overflow else { return nil }
                    out[i] = quotient
                case "Pow":
                    guard q >= 0, q < 64 else { return nil }
                    var r: Int64 = 1
                    for _ in 0..<q { r = r &* p }
                    out[i] = r
                case "Max": out[i] = max(p, q)
                case "Min": out[i] = min(p, q)
                case "Equal": out[i] = p == q ? 1 : 0
                case "Less": out[i] = p < q ? 1 : 0
                case "Greater": out[i] = p > q ? 1 : 0
                case "LessOrEqual": out[i] = p <= q ? 1 : 0
                case "GreaterOrEqual": out[i] = p >= q ? 1 : 0
                case "And": out[i] = (p != 0 && q != 0) ? 1 : 0
                case "Or": out[i] = (p != 0 || q != 0) ? 1 : 0
                case "Xor": out[i] = ((p != 0) != (q != 0)) ? 1 : 0
                default: return nil
                }
                if !comparison && !logical { out[i] = DenseArray.wrap(out[i], to: a.dtype) }
            }
            return DenseArray(dtype: comparison || logical ? .bool : a.dtype, shape: shape, storage: .ints(out))
        }
        guard !logical else { return nil }
        let x = a.floats, y = b.floats
        var out = [Double](repeating: 0, count: ia.count)
        for i in 0..<ia.count {
            let p = x[ia[i]], q = y[ib[i]]
            switch op {
            case "Add", "Sum": out[i] = p + q
            case "Sub": out[i] = p - q
            case "Mul": out[i] = p * q
            case "Div": out[i] = p / q
            case "Pow":
                // Only exponents where the result is the correctly rounded one; others go
                // to the interpreter's kernel (see RuntimeConstantEvaluator).
                switch q {
                case 2: out[i] = p * p
                case 1: out[i] = p
                case 0: out[i] = 1
                case 0.5: out[i] = p.squareRoot()
                default: return nil
                }
            case "Max": out[i] = p.isNaN || q.isNaN ? .nan : max(p, q)
            case "Min": out[i] = p.isNaN || q.isNaN ? .nan : min(p, q)
            case "Equal": out[i] = p == q ? 1 : 0
            case "Less": out[i] = p < q ? 1 : 0
            case "Greater": out[i] = p > q ? 1 : 0
            case "LessOrEqual": out[i] = p <= q ? 1 : 0
            case "GreaterOrEqual": out[i] = p >= q ? 1 : 0
            default: return nil
            }
        }
        if comparison { return DenseArray(dtype: .bool, shape: shape, storage: .ints(out.map { $0 != 0 ? 1 : 0 })) }
        guard a.dtype.isFloatingPoint else { return nil }
        return DenseArray(dtype: a.dtype, shape: shape, storage: .floats(out))
    }

    static func select(_ condition: DenseArray, _ whenTrue: DenseArray, _ whenFalse: DenseArray, maxElements: Int) -> DenseArray? {
        guard let c = condition.ints, whenTrue.dtype == whenFalse.dtype,
              let shape = ShapeMath.broadcast([condition.shape, whenTrue.shape, whenFalse.shape]),
              let count = checkedElementCount(shape), count <= maxElements else { return nil }
        let ic = ShapeMath.broadcastIndices(from: condition.shape, to: shape)
        let it = ShapeMath.broadcastIndices(from: whenTrue.shape, to: shape)
        let iff = ShapeMath.broadcastIndices(from: whenFalse.shape, to: shape)
        switch (whenTrue.storage, whenFalse.storage) {
        case let (.ints(t), .ints(f)):
            return whenTrue.with(shape: shape, storage: .ints((0..<ic.count).map { c[ic[$0]] != 0 ? t[it[$0]] : f[iff[$0]] }))
        default:
            let t = whenTrue.floats, f = whenFalse.floats
            return whenTrue.with(shape: shape, storage: .floats((0..<ic.count).map { c[ic[$0]] != 0 ? t[it[$0]] : f[iff[$0]] }))
        }
    }
}
