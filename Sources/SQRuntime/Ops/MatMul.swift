import SQIR

/// MatMul (numpy semantics: 1-D operands, broadcast batch dims) and Gemm. Float32 runs on
/// the packed GEMM (`gemmF32`); a constant 2-D B is packed once at plan time. Other
/// numeric types use a plain loop.
struct MatMulKernel: OpKernel {
    let packedB: PackedFloat32Weights?
    /// A constant 2-D float16/bfloat16 B left unpacked (past `PlanOptions.packedWeightBytes`):
    /// each run widens it a block of columns at a time (`matmulByColumnBlocks`), so B is never
    /// whole in float32 (an LM head [2048, 32000]: 16 MiB at a time instead of 262 MB widened
    /// plus 262 MB packed by the GEMM).
    var blockedHalfB = false
    var preparedInputs: Set<Int> { packedB == nil ? [] : [1] }

    static func make(_ node: NodeLowering) throws -> any OpKernel {
        var packed: PackedFloat32Weights?
        var blocked = false
        if var b = node.constantInput(1), b.rank == 2, b.dtype == .float || b.dtype.isHalfPrecision {
            if node.reservePackedWeights(elements: b.count) {
                b = try widenedToFloat(b, BufferPool(maxTensorBytes: .max))
                packed = try b.withElements(as: Float.self) { try packWeights($0, k: b.shape[0], n: b.shape[1], transposed: false) }
            } else {
                blocked = b.dtype.isHalfPrecision
            }
        }
        return MatMulKernel(packedB: packed, blockedHalfB: blocked)
    }

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        if blockedHalfB, inputs.count > 1, let b = inputs[1], b.dtype.isHalfPrecision, b.rank == 2,
           let a = inputs[0], a.rank >= 1, a.dtype == b.dtype {
            return try computingHalfInFloat(inputs, widen: [0], pool) { ins in
                [try matmulByColumnBlocks(try required(ins, 0), halfB: b, pool)]
            }
        }
        return try computingHalfInFloat(inputs, widen: packedB == nil ? [0, 1] : [0], pool) { ins in
            let a = try required(ins, 0)
            if let packedB { return [try matmul(a, packed: packedB, pool)] }
            return [try matmul(a, try required(ins, 1), pool)]
        }
    }
}

/// a[..., K] · B[K, N] for a float16/bfloat16 B: `columns` columns of B (default: 16 MiB of
/// float32) are widened into a scratch block and multiplied with every row of A in one GEMM,
/// block after block. The same float32 products as widening B whole.
func matmulByColumnBlocks(_ a: Tensor, halfB b: Tensor, columns: Int? = nil, _ pool: BufferPool) throws -> Tensor {
    let k = b.shape[0], n = b.shape[1]
    guard a.dtype == .float, a.rank >= 1, a.shape[a.rank - 1] == k, b.dtype.isHalfPrecision, b.rank == 2 else {
        throw OpError("MatMul operands do not fit: \(a.dtype) \(a.shape) x \(b.dtype) \(b.shape)")
    }
    let rows = a.shape.dropLast().reduce(1, *)
    let width = max(1, min(n, columns ?? (16 << 20) / max(1, k * MemoryLayout<Float>.stride)))
    let isFloat16 = b.dtype == .float16
    return try a.withElements(as: Float.self) { ea in
        try b.withElements(as: UInt16.self) { eb in
            try pool.make(Float.self, shape: Array(a.shape.dropLast()) + [n]) { out in
                guard rows > 0 && n > 0 else { return }
                var block = [Float](repeating: 0, count: k * width)
                var product = [Float](repeating: 0, count: rows * width)
                for first in stride(from: 0, to: n, by: width) {
                    let w = min(width, n - first)
                    for kk in 0..<k {
                        for j in 0..<w {
                            let bits = eb[kk * n + first + j]
                            block[kk * w + j] = isFloat16 ? halfToFloat(bits) : bfloat16ToFloat(bits)
                        }
                    }
                    try block.withUnsafeBufferPointer { bp in
                        try product.withUnsafeMutableBufferPointer { pp in
                            try gemm(ea, UnsafeBufferPointer(rebasing: bp[0..<(k * w)]), m: rows, k: k, n: w,
                                     out: UnsafeMutableBufferPointer(rebasing: pp[0..<(rows * w)]))
                        }
                    }
                    for r in 0..<rows {
                        for j in 0..<w { out[r * n + first + j] = product[r * w + j] }
                    }
                }
            }
        }
    }
}

/// a[..., K] · B[K, N] with B packed at plan time: every row of A in one GEMM.
func matmul(_ a: Tensor, packed: PackedFloat32Weights, _ pool: BufferPool) throws -> Tensor {
    guard a.dtype == .float, a.rank >= 1, a.shape[a.rank - 1] == packed.k else {
        throw OpError("MatMul operands do not fit: \(a.dtype) \(a.shape) x f32 [\(packed.k), \(packed.n)]")
    }
    let outShape = Array(a.shape.dropLast()) + [packed.n]
    return try a.withElements(as: Float.self) { ea in
        try pool.make(Float.self, shape: outShape) { out in
            guard packed.n > 0 else { return }
            try gemm(ea, m: a.shape.dropLast().reduce(1, *), packed: packed, out: out)
        }
    }
}

/// Batch shape of two operands and, per output batch, the operands' batch indices.
func batchPairs(_ a: [Int], _ b: [Int]) throws -> (shape: [Int], pairs: [(Int, Int)]) {
    let shape = try broadcastShape([a, b])
    func strides(_ s: [Int]) -> [Int] {
        let padded = [Int](repeating: 1, count: shape.count - s.count) + s
        return zip(contiguousStrides(padded), padded).map { $1 == 1 ? 0 : $0 }
    }
    let sa = strides(a), sb = strides(b)
    let total = shape.reduce(1, *)
    var pairs: [(Int, Int)] = []
    pairs.reserveCapacity(total)
    var index = [Int](repeating: 0, count: shape.count)
    for _ in 0..<total {
        var ia = 0, ib = 0
        for d in 0..<shape.count { ia += index[d] * sa[d]; ib += index[d] * sb[d] }
        pairs.append((ia, ib))
        var d = shape.count - 1
        while d >= 0 {
            index[d] += 1
            if index[d] < shape[d] { break }
            index[d] = 0
            d -= 1
        }
    }
    return (shape, pairs)
}

func matmul(_ a: Tensor, _ b: Tensor, _ pool: BufferPool) throws -> Tensor {
    guard a.rank >= 1, b.rank >= 1 else { throw OpError("MatMul operands must have rank >= 1, got \(a.shape) and \(b.shape)") }
    guard a.dtype == b.dtype else { throw OpError("operands have different element types (\(a.dtype) and \(b.dtype))") }
    let aShape = a.rank == 1 ? [1] + a.shape : a.shape
    let bShape = b.rank == 1 ? b.shape + [1] : b.shape
    let m = aShape[aShape.count - 2], k = aShape[aShape.count - 1]
    let kb = bShape[bShape.count - 2], n = bShape[bShape.count - 1]
    guard k == kb else { throw OpError("MatMul inner dimensions differ: \(a.shape) x \(b.shape)") }
    let aBatch = Array(aShape.dropLast(2)), bBatch = Array(bShape.dropLast(2))
    let (batchShape, pairs) = try batchPairs(aBatch, bBatch)
    var outShape = batchShape
    if a.rank > 1 { outShape.append(m) }
    if b.rank > 1 { outShape.append(n) }

    guard a.dtype == .float else {
        return try NaiveMatMul(a: a, b: b, m: m, k: k, n: n, pairs: pairs, outShape: outShape, pool: pool).dispatch(a.dtype)
    }
    let batches = pairs.count
    return try a.withElements(as: Float.self) { ea in
        try b.withElements(as: Float.self) { eb in
            try pool.make(Float.self, shape: outShape) { out in
                guard m > 0 && n > 0 else { return }
                if bBatch.allSatisfy({ $0 == 1 }) {
                    // One B for every batch: all of A's rows form one GEMM.
                    try gemm(ea, eb, m: batches * m, k: k, n: n, out: out)
                    return
                }
                if aBatch == bBatch {
                    try batchedGemm(ea, eb, batch: batches, m: m, k: k, n: n, out: out)
                    return
                }
                for (index, (ia, ib)) in pairs.enumerated() {
                    try gemm(UnsafeBufferPointer(rebasing: ea[(ia * m * k)..<((ia + 1) * m * k)]),
                             UnsafeBufferPointer(rebasing: eb[(ib * k * n)..<((ib + 1) * k * n)]),
                             m: m, k: k, n: n,
                             out: UnsafeMutableBufferPointer(rebasing: out[(index * m * n)..<((index + 1) * m * n)]))
                }
            }
        }
    }
}

private struct NaiveMatMul: NumericComputation {
    let a: Tensor, b: Tensor, m: Int, k: Int, n: Int, pairs: [(Int, Int)], outShape: [Int], pool: BufferPool

    func run<T: RuntimeNumber>(_ type: T.Type) throws -> Tensor {
        try a.withElements(as: T.self) { ea in
            try b.withElements(as: T.self) { eb in
                try pool.make(T.self, dtype: a.dtype, shape: outShape) { out in
                    for (index, (ia, ib)) in pairs.enumerated() {
                        for i in 0..<m {
                            for j in 0..<n {
                                var acc = T.zero
                                for kk in 0..<k {
                                    acc = T.add(acc, T.multiply(ea[(ia * m + i) * k + kk], eb[(ib * k + kk) * n + j]))
                                }
                                out[(index * m + i) * n + j] = acc
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Gemm: Y = alpha · A' · B' + beta · C, A' = transA ? Aᵀ : A, B' likewise; C broadcasts
/// to [M, N]. A constant B is packed once.
struct GemmKernel: OpKernel {
    let transA: Bool, transB: Bool
    let alpha: Float, beta: Float
    let packedB: PackedFloat32Weights?
    var preparedInputs: Set<Int> { packedB == nil ? [] : [1] }

    static func make(_ node: NodeLowering) throws -> any OpKernel {
        let transB = try node.int("transB", default: 0) != 0
        var packed: PackedFloat32Weights?
        if var b = node.constantInput(1), b.rank == 2, b.dtype == .float || b.dtype.isHalfPrecision,
           node.reservePackedWeights(elements: b.count) {
            b = try widenedToFloat(b, BufferPool(maxTensorBytes: .max))
            let (k, n) = transB ? (b.shape[1], b.shape[0]) : (b.shape[0], b.shape[1])
            packed = try b.withElements(as: Float.self) { try packWeights($0, k: k, n: n, transposed: transB) }
        }
        return GemmKernel(transA: try node.int("transA", default: 0) != 0, transB: transB,
                          alpha: try node.float("alpha", default: 1), beta: try node.float("beta", default: 1),
                          packedB: packed)
    }

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        try computingHalfInFloat(inputs, widen: packedB == nil ? [0, 1, 2] : [0, 2], pool) { ins in
            let a = try required(ins, 0)
            let b = packedB == nil ? try required(ins, 1) : nil
            guard a.rank == 2, a.dtype == .float, b.map({ $0.rank == 2 && $0.dtype == .float }) ?? true else {
                throw OpError("Gemm needs 2-D float operands, got \(a.dtype) \(a.shape) and \(b.map { "\($0.dtype) \($0.shape)" } ?? "")")
            }
            let (m, k) = transA ? (a.shape[1], a.shape[0]) : (a.shape[0], a.shape[1])
            let (kb, n): (Int, Int)
            if let packedB { (kb, n) = (packedB.k, packedB.n) } else if let b { (kb, n) = transB ? (b.shape[1], b.shape[0]) : (b.shape[0], b.shape[1]) } else { (kb, n) = (0, 0) }
            guard k == kb else { throw OpError("Gemm inner dimensions differ: A \(a.shape) (transA \(transA)), B has \(kb) rows") }
            let left = transA ? try stridedView(a, offset: 0, strides: [1, a.shape[1]], shape: [m, k], pool) : a
            let c = ins.count > 2 ? ins[2] : nil
            let biasVector = c.map { $0.dtype == .float && $0.count == n && ($0.rank <= 1 || $0.shape == [1, n]) } ?? false
            let fuseBias = biasVector && alpha == 1 && beta == 1
            var y = try left.withElements(as: Float.self) { ea in
                try pool.make(Float.self, shape: [m, n]) { out in
                    guard m > 0, n > 0 else { return }
                    let bias = fuseBias ? c.map { $0.withElements(as: Float.self) { $0 } } : nil
                    if let packedB {
                        try gemm(ea, m: m, packed: packedB, out: out, bias: bias)
                    } else if let b {
                        try b.withElements(as: Float.self) { eb in
                            try gemm(ea, eb, m: m, k: k, n: n, transposeB: transB, out: out, bias: bias)
                        }
                    }
                    if alpha != 1 { for i in 0..<out.count { out[i] *= alpha } }
                }
            }
            if let c, !fuseBias, beta != 0 {
                let scaled = beta == 1 ? c : try arithmetic(.multiply, c, Tensor(scalar: beta), pool)
                y = try arithmetic(.add, y, scaled, pool)
                guard y.shape == [m, n] else { throw OpError("C of shape \(c.shape) does not broadcast to [\(m), \(n)]") }
            }
            return [y]
        }
    }
}
