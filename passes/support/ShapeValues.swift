import SQIR

/// Dim arithmetic for shape inference with symbolic dims (`batch`, `seq`).
enum DimMath {
    /// Numpy broadcasting of two dims: equal dims stay, 1 yields to the other, a known dim
    /// other than 1 wins over a symbol (the model is assumed valid), two different symbols
    /// give unknown.
    static func broadcast(_ a: Dim, _ b: Dim) -> Dim {
        if a == b { return a }
        if a == .known(1) { return b }
        if b == .known(1) { return a }
        if case .known = a { return a }
        if case .known = b { return b }
        return .unknown
    }

    static func broadcast(_ shapes: [[Dim]?]) -> [Dim]? {
        var out: [Dim] = []
        for shape in shapes {
            guard let shape else { return nil }
            let rank = max(out.count, shape.count)
            let a = [Dim](repeating: .known(1), count: rank - out.count) + out
            let b = [Dim](repeating: .known(1), count: rank - shape.count) + shape
            out = zip(a, b).map { broadcast($0, $1) }
        }
        return out
    }

    /// The product of dims if all known.
    static func product(_ dims: some Sequence<Dim>) -> Dim {
        var p = 1
        for d in dims {
            guard let v = d.value else { return .unknown }
            let (next, overflow) = p.multipliedReportingOverflow(by: v)
            guard !overflow else { return .unknown }
            p = next
        }
        return .known(p)
    }

    /// a + b when both are known; a when b is 0 and vice versa.
    static func sum(_ a: Dim, _ b: Dim) -> Dim {
        if let x = a.value, let y = b.value {
            let (s, overflow) = x.addingReportingOverflow(y)
            return overflow ? .unknown : .known(s)
        }
        if b == .known(0) { return a }
        if a == .known(0) { return b }
        return .unknown
    }

    /// The dim a Reshape's -1 stands for: the input's dims with the output's other dims
    /// cancelled out; symbols cancel by name (so [batch, seq, 768] -> [batch, -1, 12, 64]
    /// gives seq).
    static func inferredDim(input: [Dim], otherOutputDims: [Dim]) -> Dim {
        var numeratorSymbols: [String] = [], denominatorSymbols: [String] = []
        var numerator = 1, denominator = 1
        func times(_ a: inout Int, _ b: Int) -> Bool {
            let (p, overflow) = a.multipliedReportingOverflow(by: b)
            a = p
            return !overflow
        }
        for d in input {
            switch d {
            case .known(let v): guard times(&numerator, v) else { return .unknown }
            case .symbolic(let s): numeratorSymbols.append(s)
            case .unknown: return .unknown
            }
        }
        for d in otherOutputDims {
            switch d {
            case .known(let v): guard times(&denominator, v) else { return .unknown }
            case .symbolic(let s):
                if let i = numeratorSymbols.firstIndex(of: s) { numeratorSymbols.remove(at: i) } else { denominatorSymbols.append(s) }
            case .unknown: return .unknown
            }
        }
        guard denominatorSymbols.isEmpty, denominator > 0, numerator % denominator == 0 else { return .unknown }
        let factor = numerator / denominator
        if numeratorSymbols.isEmpty { return .known(factor) }
        if numeratorSymbols.count == 1 && factor == 1 { return .symbolic(numeratorSymbols[0]) }
        return .unknown
    }

    /// A possibly negative axis in 0..<rank.
    static func axis(_ axis: Int, rank: Int) -> Int? {
        let a = axis < 0 ? axis + rank : axis
        return (0..<rank).contains(a) ? a : nil
    }
}

/// The contents of a small integer tensor known as dims: what `Shape(x)` and the arithmetic
/// exporters build on it compute (`Concat(Unsqueeze(Gather(Shape(x), 0)), [-1, 12, 64])`).
struct ShapeValue: Equatable {
    var dims: [Dim]
    /// A rank-0 tensor (one element) rather than a 1-D one.
    var isScalar: Bool
}

/// What shape inference knows while it walks a graph.
struct ShapeInferenceState {
    let opset: Int
    var shapeValues: [ObjectIdentifier: ShapeValue] = [:]

    init(opset: Int) {
        self.opset = opset
    }

    func type(_ value: Value?) -> TensorType? {
        guard let value else { return nil }
        return value.type ?? value.knownConstant?.type
    }

    func dims(_ value: Value?) -> [Dim]? { type(value)?.dims }

    func dtype(_ value: Value?) -> DType? { type(value)?.dtype }

    /// Integer constant contents.
    func constantInts(_ value: Value?) -> [Int]? {
        value?.knownConstant?.int64Values()?.map { Int(truncatingIfNeeded: $0) }
    }

    /// The elements of an integer tensor as dims: from a constant or from tracking.
    func shapeValue(_ value: Value?) -> ShapeValue? {
        guard let value else { return nil }
        if let tensor = value.knownConstant, let ints = tensor.int64Values(), tensor.rank <= 1 {
            return ShapeValue(dims: ints.map { .known(Int(truncatingIfNeeded: $0)) }, isScalar: tensor.rank == 0)
        }
        return shapeValues[ObjectIdentifier(value)]
    }

    mutating func record(_ shapeValue: ShapeValue?, for value: Value?) {
        guard let value, let shapeValue else { return }
        shapeValues[ObjectIdentifier(value)] = shapeValue
    }

    /// Tracks shape values through the integer ops exporters use for shape arithmetic.
    mutating func propagateShapeValue(_ node: Node) {
        guard node.domain.isEmpty, let out = node.output(0) else { return }
        let a = shapeValue(node.input(0))
        switch node.opType {
        case "Shape":
            guard let dims = dims(node.input(0)) else { return }
            let (lo, hi) = ShapeKernels.shapeRange(rank: dims.count, start: node.int("start"), end: node.int("end"))
            record(ShapeValue(dims: lo < hi ? Array(dims[lo..<hi]) : [], isScalar: false), for: out)
        case "Identity", "Cast":
            record(a, for: out)
        case "Gather":
            guard let a, !a.isScalar, (node.int("axis") ?? 0) == 0, let indices = node.input(1)?.knownConstant,
                  let index = indices.int64Values(), indices.rank <= 1 else { return }
            var picked: [Dim] = []
            for i in index {
                let k = i < 0 ? Int(i) + a.dims.count : Int(i)
                guard k >= 0 && k < a.dims.count else { return }
                picked.append(a.dims[k])
            }
            record(ShapeValue(dims: picked, isScalar: indices.rank == 0), for: out)
        case "Unsqueeze":
            guard let a, a.isScalar else { return }
            record(ShapeValue(dims: a.dims, isScalar: false), for: out)
        case "Squeeze":
            guard let a, !a.isScalar, a.dims.count == 1 else { return }
            record(ShapeValue(dims: a.dims, isScalar: true), for: out)
        case "Concat":
            var all: [Dim] = []
            for input in node.inputs {
                guard let part = shapeValue(input), !part.isScalar else { return }
                all += part.dims
            }
            record(ShapeValue(dims: all, isScalar: false), for: out)
        case "Slice":
            guard let a, !a.isScalar, let starts = constantInts(node.input(1)), let ends = constantInts(node.input(2)),
                  starts.count == 1, ends.count == 1, (constantInts(node.input(3)) ?? [0]) == [0],
                  (constantInts(node.input(4)) ?? [1]) == [1] else { return }
            let (lo, hi) = ShapeKernels.shapeRange(rank: a.dims.count, start: starts[0], end: min(ends[0], a.dims.count))
            record(ShapeValue(dims: lo < hi ? Array(a.dims[lo..<hi]) : [], isScalar: false), for: out)
        case "Add", "Sub", "Mul", "Div":
            guard let a, let b = shapeValue(node.input(1)), !a.dims.isEmpty, !b.dims.isEmpty else { return }
            let count = max(a.dims.count, b.dims.count)
            guard a.dims.count == b.dims.count || a.dims.count == 1 || b.dims.count == 1 else { return }
            var dims: [Dim] = []
            for i in 0..<count {
                let x = a.dims[a.dims.count == 1 ? 0 : i], y = b.dims[b.dims.count == 1 ? 0 : i]
                dims.append(Self.arithmetic(node.opType, x, y))
            }
            record(ShapeValue(dims: dims, isScalar: a.isScalar && b.isScalar), for: out)
        default:
            return
        }
    }

    private static func arithmetic(_ op: String, _ x: Dim, _ y: Dim) -> Dim {
        switch (op, x, y) {
        case ("Mul", _, .known(1)), ("Div", _, .known(1)), ("Add", _, .known(0)), ("Sub", _, .known(0)): return x
        case ("Mul", .known(1), _), ("Add", .known(0), _): return y
        default: break
        }
        guard let p = x.value, let q = y.value else { return .unknown }
        let (value, overflow): (Int, Bool)
        switch op {
        case "Add": (value, overflow) = p.addingReportingOverflow(q)
        case "Sub": (value, overflow) = p.subtractingReportingOverflow(q)
        case "Mul": (value, overflow) = p.multipliedReportingOverflow(by: q)
        default:
            guard q != 0 else { return .unknown }
            (value, overflow) = p.dividedReportingOverflow(by: q)
        }
        return overflow ? .unknown : .known(value)
    }
}
