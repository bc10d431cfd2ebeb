import SQIR

/// The int8 kernels the QDQ lowering (Plan/Int8Lowering.swift) runs:
/// quantize the float activations with the graph's scales (ONNX QuantizeLinear semantics:
/// x / scale, round half to even, saturate to [-128, 127]), multiply int8 × int8 with exact
/// int32 sums, rescale by s_x · s_w and add the bias, in one GEMM call. Shapes or scales the
/// int8 path does not cover fall back to the reference computation (Q, DQ, float MatMul).

/// x dequantized after quantization, exactly as the Q and DQ nodes would compute it.
private func fakeQuantized(_ x: Tensor, _ scale: Tensor, _ p: ActivationQDQ, _ pool: BufferPool) throws -> Tensor {
    let q = try QuantizeLinearKernel(axis: p.axis, blockSize: p.blockSize, outputType: .int8).run([x, scale], pool)
    return try required(DequantizeLinearKernel(axis: p.axis, blockSize: p.blockSize).run([q.first ?? nil, scale], pool), 0)
}

/// Quantizes `rows` rows of x (`x.count / rows` columns) into `q` with one scale
/// (`scales.count == 1`) or one per row.
private func quantizeRows(_ x: Tensor, rows: Int, scales: [Float], into q: UnsafeMutableBufferPointer<Int8>) throws {
    let cols = rows == 0 ? 0 : x.count / rows
    try x.withElements(as: Float.self) { src in
        if scales.count == 1 {
            try quantizeRowsInt8(src, rows: rows, cols: cols, mode: .perTensor(scale: scales[0]), into: q,
                                 scales: UnsafeMutableBufferPointer(start: nil, count: 0), saturateLow: -128)
            return
        }
        for r in 0..<rows {
            let range = (r * cols)..<((r + 1) * cols)
            try quantizeRowsInt8(UnsafeBufferPointer(rebasing: src[range]), rows: 1, cols: cols,
                                 mode: .perTensor(scale: scales[r]), into: UnsafeMutableBufferPointer(rebasing: q[range]),
                                 scales: UnsafeMutableBufferPointer(start: nil, count: 0), saturateLow: -128)
        }
    }
}

/// The scales of an activation for the int8 path: one (per tensor) or one per row of
/// `[rows, lastDim]` (blocked along the last axis with one block per row); nil otherwise.
func rowScales(_ x: Tensor, _ scale: Tensor, _ p: ActivationQDQ) -> [Float]? {
    guard scale.dtype == .float, let last = x.shape.last, last > 0 else { return nil }
    if scale.count == 1 { return scale.elements(as: Float.self) }
    let rows = x.count / last
    guard p.blockSize == last, p.axis == -1 || p.axis == x.rank - 1, scale.count == rows,
          scale.shape == Array(x.shape.dropLast()) + [1] else { return nil }
    return scale.elements(as: Float.self)
}

/// DQ(Q(x)) · DQ(W) (+ bias) with W packed once.
struct Int8LinearKernel: OpKernel {
    let activation: ActivationQDQ
    let weights: PackedInt8Weights
    let k: Int, n: Int
    let bias: [Float]?
    /// For the fallback: W (int8, stored layout) and its scales.
    let weight: Tensor
    let weightScales: [Float]
    let transposed: Bool

    init(activation: ActivationQDQ, weight: Tensor, scales: [Float], transposed: Bool, bias: [Float]?) throws {
        let (k, n) = transposed ? (weight.shape[1], weight.shape[0]) : (weight.shape[0], weight.shape[1])
        self.weights = try weight.withElements(as: Int8.self) {
            try PackedInt8Weights(k: k, n: n, values: $0, scales: scales, transposed: transposed)
        }
        (self.activation, self.k, self.n, self.bias) = (activation, k, n, bias)
        (self.weight, self.weightScales, self.transposed) = (weight, scales, transposed)
    }

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        let x = try required(inputs, 0), scale = try required(inputs, 1, "scale")
        guard x.dtype == .float, x.shape.last == k, let scales = rowScales(x, scale, activation) else {
            return [try fallback(x, scale, pool)]
        }
        let rows = x.count / k
        let quantized = try pool.storage(byteCount: rows * k)
        defer { pool.recycle(quantized) }
        guard let qBytes = quantized.mutableBytes else { throw OpError("internal: read-only scratch") }
        let q = qBytes.bindMemory(to: Int8.self)
        try quantizeRows(x, rows: rows, scales: scales, into: q)
        let out = try pool.make(Float.self, shape: Array(x.shape.dropLast()) + [n]) { out in
            try scales.withUnsafeBufferPointer { aScales in
                if let bias {
                    try bias.withUnsafeBufferPointer { b in
                        try gemmInt8(a: UnsafeBufferPointer(q), m: rows, aScales: aScales, b: weights, out: out, bias: b)
                    }
                } else {
                    try gemmInt8(a: UnsafeBufferPointer(q), m: rows, aScales: aScales, b: weights, out: out)
                }
            }
        }
        return [out]
    }

    /// Q, DQ and a float MatMul with the dequantized weight.
    private func fallback(_ x: Tensor, _ scale: Tensor, _ pool: BufferPool) throws -> Tensor {
        let xq = try fakeQuantized(widenedToFloatIfHalf(x, pool), widenedToFloatIfHalf(scale, pool), activation, pool)
        let w = try DequantizeLinearKernel(axis: transposed ? 0 : 1, blockSize: 0)
            .run([weight, Tensor(shape: [weightScales.count], values: weightScales)], pool)
        let wFloat = try required(w, 0)
        let y = try matmul(xq, transposed ? try TransposeKernel(perm: [1, 0]).run([wFloat], pool)[0] ?? wFloat : wFloat, pool)
        guard let bias else { return y }
        return try arithmetic(.add, y, Tensor(shape: [bias.count], values: bias), pool)
    }
}

/// DQ(Q(a)) · DQ(Q(b)) for the attention MatMuls: both operands quantized at run time,
/// a batched int8 GEMM over equal batch dims. A: per tensor or per row; B: per tensor or
/// per column (blocked along axis -2 with one block per column, as O1 writes Kᵀ).
struct Int8BatchedMatMulKernel: OpKernel {
    let a: ActivationQDQ
    let b: ActivationQDQ

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        let xa = try required(inputs, 0), sa = try required(inputs, 1, "scale of A")
        let xb = try required(inputs, 2), sb = try required(inputs, 3, "scale of B")
        guard xa.dtype == .float, xb.dtype == .float, xa.rank >= 2, xa.rank == xb.rank,
              xa.shape.dropLast(2) == xb.shape.dropLast(2), xa.shape[xa.rank - 1] == xb.shape[xb.rank - 2],
              let aScales = rowScales(xa, sa, a), let bScales = columnScales(xb, sb) else {
            return [try matmul(fakeQuantized(xa, sa, a, pool), fakeQuantized(xb, sb, b, pool), pool)]
        }
        let m = xa.shape[xa.rank - 2], k = xa.shape[xa.rank - 1], n = xb.shape[xb.rank - 1]
        let batch = xa.shape.dropLast(2).reduce(1, *)
        let qa = try pool.storage(byteCount: xa.count), qb = try pool.storage(byteCount: xb.count)
        defer { pool.recycle(qa); pool.recycle(qb) }
        guard let aBytes = qa.mutableBytes, let bBytes = qb.mutableBytes else { throw OpError("internal: read-only scratch") }
        let aInt8 = aBytes.bindMemory(to: Int8.self), bInt8 = bBytes.bindMemory(to: Int8.self)
        try quantizeRows(xa, rows: batch * m, scales: aScales, into: aInt8)
        if bScales.count == 1 {
            try quantizeRows(xb, rows: batch * k, scales: bScales, into: bInt8)
        } else {
            let q = try required(QuantizeLinearKernel(axis: b.axis, blockSize: b.blockSize, outputType: .int8).run([xb, sb], pool), 0)
            q.withElements(as: Int8.self) { src in _ = bInt8.update(fromContentsOf: src) }
        }
        let out = try pool.make(Float.self, shape: Array(xa.shape.dropLast()) + [n]) { out in
            try aScales.withUnsafeBufferPointer { sA in
                try bScales.withUnsafeBufferPointer { sB in
                    try batchedGemmInt8(a: UnsafeBufferPointer(aInt8), aScales: sA, b: UnsafeBufferPointer(bInt8), bScales: sB,
                                        batch: batch, m: m, k: k, n: n, out: out)
                }
            }
        }
        return [out]
    }

    /// B's scales: one, or one per column (blocked along axis -2, one block per column).
    func columnScales(_ x: Tensor, _ scale: Tensor) -> [Float]? {
        guard scale.dtype == .float else { return nil }
        if scale.count == 1 { return scale.elements(as: Float.self) }
        let k = x.shape[x.rank - 2]
        var expected = x.shape
        expected[x.rank - 2] = 1
        guard b.blockSize == k, b.axis == -2 || b.axis == x.rank - 2, scale.shape == expected else { return nil }
        return scale.elements(as: Float.self)
    }
}
