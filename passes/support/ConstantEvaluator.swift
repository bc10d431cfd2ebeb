import SQIR

/// Evaluates one node whose inputs are all constant (`fold-constants` calls it).
///
/// Returns one tensor per node output, or nil when this evaluator cannot compute the node
/// (unknown op, dtype it does not handle, output larger than its limit); throws only when
/// the node is invalid (the error names it).
public protocol ConstantEvaluator: Sendable {
    func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor]?
}

/// The `PassContext` slot through which a caller (a test, the driver) replaces the evaluator
/// `fold-constants` uses.
public enum ConstantEvaluatorKey: PassContextKey {
    public typealias Value = any ConstantEvaluator
}

/// Tries evaluators in order; the first that answers wins.
public struct ChainedConstantEvaluator: ConstantEvaluator {
    public let evaluators: [any ConstantEvaluator]

    public init(_ evaluators: [any ConstantEvaluator]) {
        self.evaluators = evaluators
    }

    public func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor]? {
        for evaluator in evaluators {
            if let out = try evaluator.evaluate(node, inputs: inputs, opset: opset) { return out }
        }
        return nil
    }
}

/// Row-major numeric data in one of two exact carriers: integers (and bools) as Int64,
/// floating point as Double (exact for f32/f16/bf16 inputs; single IEEE operations computed
/// in Double and rounded to f32 give the f32 result).
struct DenseArray {
    enum Storage {
        case ints([Int64])
        case floats([Double])
    }

    var dtype: DType
    var shape: [Int]
    var storage: Storage

    var count: Int { shape.reduce(1, *) }
    var ints: [Int64]? { if case .ints(let v) = storage { return v } else { return nil } }
    var floats: [Double] {
        switch storage {
        case .ints(let v): return v.map(Double.init)
        case .floats(let v): return v
        }
    }

    init(dtype: DType, shape: [Int], storage: Storage) {
        self.dtype = dtype
        self.shape = shape
        self.storage = storage
    }

    /// nil for string and uint64 tensors.
    init?(_ tensor: Tensor) {
        dtype = tensor.dtype
        shape = tensor.shape
        if tensor.dtype.isFloatingPoint {
            storage = .floats(tensor.doubleValues())
        } else if let ints = tensor.int64Values() {
            storage = .ints(ints)
        } else {
            return nil
        }
    }

    /// The same storage kind with new values.
    func with(shape: [Int], storage: Storage, dtype: DType? = nil) -> DenseArray {
        DenseArray(dtype: dtype ?? self.dtype, shape: shape, storage: storage)
    }

    /// Elements at `indices` (flat), laid out as `shape`.
    func take(_ indices: [Int], shape: [Int]) -> DenseArray {
        switch storage {
        case .ints(let v): return with(shape: shape, storage: .ints(indices.map { v[$0] }))
        case .floats(let v): return with(shape: shape, storage: .floats(indices.map { v[$0] }))
        }
    }

    /// Same data under `dtype`, converting as ONNX Cast does (float -> int truncates toward
    /// zero); nil when a float is NaN or out of range for the integer type.
    func cast(to target: DType) -> DenseArray? {
        if target.isFloatingPoint { return DenseArray(dtype: target, shape: shape, storage: .floats(floats)) }
        guard target.isInteger || target == .bool else { return nil }
        switch storage {
        case .ints(let v):
            return DenseArray(dtype: target, shape: shape, storage: .ints(v.map { DenseArray.wrap($0, to: target) }))
        case .floats(let v):
            var out: [Int64] = []
            out.reserveCapacity(v.count)
            for d in v {
                if target == .bool { out.append(d != 0 ? 1 : 0); continue }
                guard d.isFinite, let i = Int64(exactly: d.rounded(.towardZero)) else { return nil }
                out.append(DenseArray.wrap(i, to: target))
            }
            return DenseArray(dtype: target, shape: shape, storage: .ints(out))
        }
    }

    /// Integer wrap-around into `dtype`'s range (bool: nonzero -> 1).
    static func wrap(_ v: Int64, to dtype: DType) -> Int64 {
        switch dtype {
        case .bool: return v != 0 ? 1 : 0
        case .int8: return Int64(Int8(truncatingIfNeeded: v))
        case .uint8: return Int64(UInt8(truncatingIfNeeded: v))
        case .int16: return Int64(Int16(truncatingIfNeeded: v))
        case .uint16: return Int64(UInt16(truncatingIfNeeded: v))
        case .int32: return Int64(Int32(truncatingIfNeeded: v))
        case .uint32: return Int64(UInt32(truncatingIfNeeded: v))
        default: return v
        }
    }

    func tensor() -> Tensor? {
        switch (dtype, storage) {
        case (.float, _): return Tensor(shape: shape, values: floats.map { Float($0) })
        case (.double, _): return Tensor(shape: shape, values: floats)
        case (.float16, _): return pack(floats.map { floatToHalf(Float($0)) })
        case (.bfloat16, _): return pack(floats.map { DenseArray.floatToBFloat16(Float($0)) })
        case (.int64, .ints(let v)): return Tensor(shape: shape, values: v)
        case (.int32, .ints(let v)): return Tensor(shape: shape, values: v.map { Int32(truncatingIfNeeded: $0) })
        case (.int16, .ints(let v)): return Tensor(shape: shape, values: v.map { Int16(truncatingIfNeeded: $0) })
        case (.int8, .ints(let v)): return Tensor(shape: shape, values: v.map { Int8(truncatingIfNeeded: $0) })
        case (.uint32, .ints(let v)): return Tensor(shape: shape, values: v.map { UInt32(truncatingIfNeeded: $0) })
        case (.uint16, .ints(let v)): return Tensor(shape: shape, values: v.map { UInt16(truncatingIfNeeded: $0) })
        case (.uint8, .ints(let v)): return Tensor(shape: shape, values: v.map { UInt8(truncatingIfNeeded: $0) })
        case (.bool, .ints(let v)): return pack(v.map { UInt8($0 != 0 ? 1 : 0) })
        default: return nil
        }
    }

    private func pack<T>(_ values: [T]) -> Tensor? {
        values.withUnsafeBytes { try? Tensor(dtype: dtype, shape: shape, storage: TensorStorage(copying: $0)) }
    }

    /// Round to nearest even, NaN kept quiet.
    static func floatToBFloat16(_ f: Float) -> UInt16 {
        let bits = f.bitPattern
        if f.isNaN { return UInt16(bits >> 16) | 0x40 }
        let rounding = UInt32(0x7FFF) + ((bits >> 16) & 1)
        return UInt16((bits &+ rounding) >> 16)
    }
}

/// Index arithmetic shared by the kernels.
enum ShapeMath {
    static func strides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var s = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[i] = s
            s *= shape[i]
        }
        return strides
    }

    /// Numpy broadcasting of static shapes; nil when incompatible.
    static func broadcast(_ shapes: [[Int]]) -> [Int]? {
        let rank = shapes.map(\.count).max() ?? 0
        var out = [Int](repeating: 1, count: rank)
        for shape in shapes {
            let offset = rank - shape.count
            for (i, d) in shape.enumerated() {
                let j = offset + i
                if out[j] == 1 { out[j] = d } else if d != 1 && d != out[j] { return nil }
            }
        }
        return out
    }

    /// For each element of `outShape`, the flat index into an input of `shape` broadcast to it.
    static func broadcastIndices(from shape: [Int], to outShape: [Int]) -> [Int] {
        let count = outShape.reduce(1, *)
        let offset = outShape.count - shape.count
        let inStrides = strides(shape)
        var indices = [Int](repeating: 0, count: count)
        var coordinate = [Int](repeating: 0, count: outShape.count)
        for flat in 0..<count {
            var index = 0
            for (i, d) in shape.enumerated() where d != 1 {
                index += coordinate[offset + i] * inStrides[i]
            }
            indices[flat] = index
            var axis = outShape.count - 1
            while axis >= 0 {
                coordinate[axis] += 1
                if coordinate[axis] < outShape[axis] { break }
                coordinate[axis] = 0
                axis -= 1
            }
        }
        return indices
    }

    /// A possibly negative axis normalized into 0..<rank; nil when out of range.
    static func axis(_ axis: Int, rank: Int) -> Int? {
        let a = axis < 0 ? axis + rank : axis
        return (0..<rank).contains(a) ? a : nil
    }
}
