import SQIR

/// Comparisons (bool out), logical and bitwise ops, Not and Where.
enum CompareOp: Sendable { case equal, less, greater, lessOrEqual, greaterOrEqual }

struct CompareKernel: OpKernel {
    let op: CompareOp

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        try computingHalfInFloat(inputs, pool) { ins in
            let a = try required(ins, 0), b = try required(ins, 1)
            guard a.dtype == b.dtype else {
                throw OpError("operands have different element types (\(a.dtype) and \(b.dtype))")
            }
            return [try CompareComputation(op: op, a: a, b: b, pool: pool).dispatch(a.dtype)]
        }
    }
}

private struct CompareComputation: NumericComputation {
    let op: CompareOp, a: Tensor, b: Tensor, pool: BufferPool

    func run<T: RuntimeNumber>(_ type: T.Type) throws -> Tensor {
        func compare(_ f: (T, T) -> Bool) throws -> Tensor {
            try mapBinary(a, b, T.self, T.self, to: UInt8.self, dtype: .bool, pool) { f($0, $1) ? 1 : 0 }
        }
        switch op {
        case .equal: return try compare { $0 == $1 }
        case .less: return try compare { $0 < $1 }
        case .greater: return try compare { $0 > $1 }
        case .lessOrEqual: return try compare { $0 <= $1 }
        case .greaterOrEqual: return try compare { $0 >= $1 }
        }
    }
}

enum LogicOp: Sendable { case and, or, xor }

/// And, Or, Xor of bool tensors.
struct LogicKernel: OpKernel {
    let op: LogicOp

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        let a = try required(inputs, 0), b = try required(inputs, 1)
        guard a.dtype == .bool, b.dtype == .bool else {
            throw OpError("operands must be bool, got \(a.dtype) and \(b.dtype)")
        }
        switch op {
        case .and: return [try mapBinary(a, b, UInt8.self, UInt8.self, to: UInt8.self, dtype: .bool, pool) { ($0 != 0 && $1 != 0) ? 1 : 0 }]
        case .or: return [try mapBinary(a, b, UInt8.self, UInt8.self, to: UInt8.self, dtype: .bool, pool) { ($0 != 0 || $1 != 0) ? 1 : 0 }]
        case .xor: return [try mapBinary(a, b, UInt8.self, UInt8.self, to: UInt8.self, dtype: .bool, pool) { (($0 != 0) != ($1 != 0)) ? 1 : 0 }]
        }
    }
}

struct NotKernel: OpKernel {
    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        let x = try required(inputs, 0)
        guard x.dtype == .bool else { throw OpError("Not needs a bool tensor, got \(x.dtype)") }
        return [try mapUnary(x, UInt8.self, to: UInt8.self, dtype: .bool, pool) { $0 == 0 ? 1 : 0 }]
    }
}

enum BitwiseOp: Sendable { case and, or, xor, not, shiftLeft, shiftRight }

/// BitwiseAnd/Or/Xor/Not and BitShift on integer tensors.
struct BitwiseKernel: OpKernel {
    let op: BitwiseOp

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        let a = try required(inputs, 0)
        let b = op == .not ? a : try required(inputs, 1)
        guard a.dtype == b.dtype else { throw OpError("operands have different element types") }
        return [try BitwiseComputation(op: op, a: a, b: b, pool: pool).dispatch(a.dtype)]
    }
}

private struct BitwiseComputation: IntegerComputation {
    let op: BitwiseOp, a: Tensor, b: Tensor, pool: BufferPool

    func run<T: RuntimeInteger>(_ type: T.Type) throws -> Tensor {
        let d = a.dtype
        switch op {
        case .and: return try mapBinary(a, b, T.self, T.self, to: T.self, dtype: d, pool) { $0 & $1 }
        case .or: return try mapBinary(a, b, T.self, T.self, to: T.self, dtype: d, pool) { $0 | $1 }
        case .xor: return try mapBinary(a, b, T.self, T.self, to: T.self, dtype: d, pool) { $0 ^ $1 }
        case .not: return try mapUnary(a, T.self, to: T.self, dtype: d, pool) { ~$0 }
        case .shiftLeft: return try mapBinary(a, b, T.self, T.self, to: T.self, dtype: d, pool) { $0 &<< $1 }
        case .shiftRight: return try mapBinary(a, b, T.self, T.self, to: T.self, dtype: d, pool) { $0 &>> $1 }
        }
    }
}

/// Where(condition, x, y) with three-way broadcasting, for every dtype.
struct WhereKernel: OpKernel {
    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        let c = try required(inputs, 0), x = try required(inputs, 1), y = try required(inputs, 2)
        guard c.dtype == .bool else { throw OpError("the condition must be bool, got \(c.dtype)") }
        guard x.dtype == y.dtype else { throw OpError("x and y have different element types (\(x.dtype) and \(y.dtype))") }
        return [try WhereComputation(c: c, x: x, y: y, pool: pool).dispatch(x.dtype)]
    }
}

private struct WhereComputation: BitPatternComputation {
    let c: Tensor, x: Tensor, y: Tensor, pool: BufferPool

    func run<T: FixedWidthInteger & UnsignedInteger & TensorElement>(_ type: T.Type) throws -> Tensor {
        let it = try BroadcastIteration([c.shape, x.shape, y.shape])
        return try c.withElements(as: UInt8.self) { ec in
            try x.storage.bytes.withMemoryRebound(to: T.self) { ex in
                try y.storage.bytes.withMemoryRebound(to: T.self) { ey in
                    try pool.make(T.self, dtype: x.dtype, shape: it.outShape) { out in
                        broadcastTernary(it, try base(ec), try base(ex), try base(ey), try base(out)) { $0 != 0 ? $1 : $2 }
                    }
                }
            }
        }
    }
}
