import SQIR
import SQKernels

/// The int8 kernels the QDQ lowering (Plan/Int8Lowering.swift) runs:
/// quantize the float activations with the graph's scales (ONNX QuantizeLinear semantics:
/// x / scale, round half to even, saturate to [-128, 127]), multiply int8 × int8 with exact
/// int32 sums, rescale by s_x · s_w and add the bias, in one GEMM call. Shapes or scales the
/// int8 path does not cover fall back to the reference computation (Q, DQ, float MatMul).

/// The C kernels' `qmin` for activations: QuantizeLinear's int8 range (`Int8Codes.full`).
private let activationQMin = Int32(Int8Codes.fullLowerBound)

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
                                 scales: UnsafeMutableBufferPointer(start: nil, count: 0), saturateLow: Int8Codes.fullLowerBound)
            return
        }
        for r in 0..<rows {
            let range = (r * cols)..<((r + 1) * cols)
            try quantizeRowsInt8(UnsafeBufferPointer(rebasing: src[range]), rows: 1, cols: cols,
                                 mode: .perTensor(scale: scales[r]), into: UnsafeMutableBufferPointer(rebasing: q[range]),
                                 scales: UnsafeMutableBufferPointer(start: nil, count: 0), saturateLow: Int8Codes.fullLowerBound)
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
    /// O1: the per-row scales are computed here from x (the graph's scale subgraph was
    /// absorbed); the kernel then has one input, x.
    let dynamicScale: DynamicRowScale?
    /// GELU or SiLU of the output (`MatMul+Add+Gelu (int8)`): applied to blocks of rows as
    /// the product writes them, so the block is still in cache; the same values as the
    /// fused activation step after the product.
    private(set) var outputActivation: sq_vmath_op?
    /// Rows of a product block the activation follows (64 × 1 536 floats: 384 KiB).
    static let activationRows = 64

    init(activation: ActivationQDQ, weight: Tensor, scales: [Float], transposed: Bool, bias: [Float]?,
         dynamicScale: DynamicRowScale? = nil) throws {
        let (k, n) = transposed ? (weight.shape[1], weight.shape[0]) : (weight.shape[0], weight.shape[1])
        self.weights = try weight.withElements(as: Int8.self) {
            try PackedInt8Weights(k: k, n: n, values: $0, scales: scales, transposed: transposed)
        }
        (self.activation, self.k, self.n, self.bias) = (activation, k, n, bias)
        (self.weight, self.weightScales, self.transposed, self.dynamicScale) = (weight, scales, transposed, dynamicScale)
    }

    private init(_ other: Int8LinearKernel, bias: [Float]) {
        (activation, weights, k, n) = (other.activation, other.weights, other.k, other.n)
        (weight, weightScales, transposed, dynamicScale) = (other.weight, other.weightScales, other.transposed, other.dynamicScale)
        self.bias = bias
    }

    /// The same product followed by `+ bias` (N values) in the epilogue.
    func addingBias(_ bias: [Float]) -> Int8LinearKernel {
        var kernel = Int8LinearKernel(self, bias: bias)
        kernel.outputActivation = outputActivation
        return kernel
    }

    /// The same product followed by `op` (SQ_VM_GELU or SQ_VM_SILU) on its output.
    func applying(_ op: sq_vmath_op) -> Int8LinearKernel {
        var kernel = self
        kernel.outputActivation = op
        return kernel
    }

    /// float16/bfloat16 activations and scales are converted at the boundary: widened to
    /// float32 (exact), the int8 path as for float32, the result rounded once to x's type.
    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        guard let op = outputActivation, inputs.first??.dtype != .float else {
            return try computingHalfInFloat(inputs, pool) { try runFloat($0, pool) }
        }
        // Half-precision x: the product rounded to x's type, then the activation step's kernel.
        var product = self
        product.outputActivation = nil
        let y = try required(product.run(inputs, pool), 0)
        return try FusedActivationKernel(op: op).run([y], pool)
    }

    /// The fallback's result with the output activation, if any.
    private func activated(_ y: Tensor, _ pool: BufferPool) throws -> Tensor {
        guard let op = outputActivation else { return y }
        return try required(FusedActivationKernel(op: op).run([y], pool), 0)
    }

    private func runFloat(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        let x = try required(inputs, 0)
        let scale: Tensor
        var dynamicScales: [Float]?
        if let dynamicScale {
            guard x.dtype == .float, let last = x.shape.last, last > 0 else {
                throw OpError("dynamic int8 quantization expects a float32 input with a non-empty last axis, got \(x.dtype) \(x.shape)")
            }
            let rows = x.count / last
            var scales = [Float](repeating: 0, count: rows)
            if last == k {
                // Scales and quantization in one pass over x (below).
                dynamicScales = scales
            } else {
                // Shapes the int8 path does not cover: the scales as the graph computes them, then the fallback.
                x.withElements(as: Float.self) { src in
                    scales.withUnsafeMutableBufferPointer { out in
                        for r in 0..<rows {
                            var m: Float = 0, nan = false
                            for v in src[(r * last)..<((r + 1) * last)] { nan = nan || v.isNaN; m = Swift.max(m, Swift.abs(v)) }
                            let s = m / dynamicScale.divisor
                            out[r] = nan || s.isNaN || dynamicScale.minScale.isNaN ? .nan : (s < dynamicScale.minScale ? dynamicScale.minScale : s)
                        }
                    }
                }
                return [try activated(try fallback(x, Tensor(shape: Array(x.shape.dropLast()) + [1], values: scales), pool), pool)]
            }
            scale = Tensor(shape: [], values: [Float(0)])  // unused
        } else {
            scale = try required(inputs, 1, "scale")
        }
        guard x.dtype == .float, x.shape.last == k, let givenScales = dynamicScales ?? rowScales(x, scale, activation) else {
            return [try activated(try fallback(x, scale, pool), pool)]
        }
        let rows = x.count / k
        let quantized = try pool.storage(byteCount: rows * k)
        defer { pool.recycle(quantized) }
        guard let qBytes = quantized.mutableBytes else { throw OpError("internal: read-only scratch") }
        let q = qBytes.bindMemory(to: Int8.self)
        var scales = givenScales
        if let dynamicScale {
            try x.withElements(as: Float.self) { src in
                let s = try base(src), qp = try base(q)
                scales.withUnsafeMutableBufferPointer { out in
                    sq_quantize_rows_dynamic_s8(rows, k, s, qp, out.baseAddress, dynamicScale.divisor, dynamicScale.minScale, activationQMin)
                }
            }
        } else {
            try quantizeRows(x, rows: rows, scales: scales, into: q)
        }
        let out = try pool.make(Float.self, shape: Array(x.shape.dropLast()) + [n]) { out in
            try scales.withUnsafeBufferPointer { aScales in
                // One product, or blocks of rows each followed by the activation (any row split
                // gives the same bits).
                let block = outputActivation == nil ? Swift.max(rows, 1) : Self.activationRows
                let qs = UnsafeBufferPointer(q)
                for r0 in stride(from: 0, to: rows, by: block) {
                    let r = Swift.min(block, rows - r0)
                    let a = UnsafeBufferPointer(rebasing: qs[(r0 * k)..<((r0 + r) * k)])
                    let s = aScales.count == 1 ? aScales : UnsafeBufferPointer(rebasing: aScales[r0..<(r0 + r)])
                    let o = UnsafeMutableBufferPointer(rebasing: out[(r0 * n)..<((r0 + r) * n)])
                    if let bias {
                        try bias.withUnsafeBufferPointer { b in try gemmInt8(a: a, m: r, aScales: s, b: weights, out: o, bias: b) }
                    } else {
                        try gemmInt8(a: a, m: r, aScales: s, b: weights, out: o)
                    }
                    if let op = outputActivation, let base = o.baseAddress { _ = sq_vmath_f32(op, r * n, base, base) }
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
///
/// An operand whose dynamic scale subgraph was absorbed (`aDynamic`/`bDynamic`, O1/O2) has
/// no scale input (nil): its scales are computed here with the graph's float operations
/// (`DynamicScale`), in the same C call that quantizes it (per row:
/// `sq_quantize_rows_dynamic_s8`; per column of Kᵀ: `sq_quantize_cols_dynamic_s8`; per
/// tensor: `sq_absmax_nan_f32`, then the per-tensor quantization), so the same bits as
/// the nodes followed by the unfused kernel.
struct Int8BatchedMatMulKernel: OpKernel {
    let a: ActivationQDQ
    let b: ActivationQDQ
    var aDynamic: DynamicScale? = nil
    var bDynamic: DynamicScale? = nil

    /// float16/bfloat16 operands and scales: widened at the boundary, result rounded to their type.
    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        try computingHalfInFloat(inputs, pool) { try runFloat($0, pool) }
    }

    private func runFloat(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        let xa = try required(inputs, 0), xb = try required(inputs, 2)
        let sa = aDynamic == nil ? try required(inputs, 1, "scale of A") : nil
        let sb = bDynamic == nil ? try required(inputs, 3, "scale of B") : nil
        let shapesFit = xa.dtype == .float && xb.dtype == .float && xa.rank >= 2 && xa.rank == xb.rank
            && xa.shape.dropLast(2) == xb.shape.dropLast(2) && xa.shape[xa.rank - 1] == xb.shape[xb.rank - 2]
            && xa.shape[xa.rank - 1] > 0
        guard shapesFit, aDynamic.map({ fits($0, xa, a, columns: false) }) ?? true,
              bDynamic.map({ fits($0, xb, b, columns: true) }) ?? true else {
            return [try fallback(xa, sa, xb, sb, pool)]
        }
        let m = xa.shape[xa.rank - 2], k = xa.shape[xa.rank - 1], n = xb.shape[xb.rank - 1]
        let batch = xa.shape.dropLast(2).reduce(1, *)
        let qa = try pool.storage(byteCount: xa.count), qb = try pool.storage(byteCount: xb.count)
        defer { pool.recycle(qa); pool.recycle(qb) }
        guard let aBytes = qa.mutableBytes, let bBytes = qb.mutableBytes else { throw OpError("internal: read-only scratch") }
        let aInt8 = aBytes.bindMemory(to: Int8.self), bInt8 = bBytes.bindMemory(to: Int8.self)

        // A: rows of k.
        let aScales: [Float]
        if let aDynamic {
            aScales = try quantizeDynamic(xa, aDynamic, batch: batch, rows: m, cols: k, into: aInt8)
        } else if let sa, let given = rowScales(xa, sa, a) {
            aScales = given
            try quantizeRows(xa, rows: batch * m, scales: aScales, into: aInt8)
        } else {
            return [try fallback(xa, sa, xb, sb, pool)]
        }
        // B: [k, n] per batch, per tensor or per column.
        let bScales: [Float]
        if let bDynamic {
            bScales = try quantizeDynamic(xb, bDynamic, batch: batch, rows: k, cols: n, into: bInt8)
        } else if let sb, let given = columnScales(xb, sb) {
            bScales = given
            if bScales.count == 1 {
                try quantizeRows(xb, rows: batch * k, scales: bScales, into: bInt8)
            } else {
                let q = try required(QuantizeLinearKernel(axis: b.axis, blockSize: b.blockSize, outputType: .int8).run([xb, sb], pool), 0)
                q.withElements(as: Int8.self) { src in _ = bInt8.update(fromContentsOf: src) }
            }
        } else {
            return [try fallback(xa, sa, xb, sb, pool)]
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

    /// Whether the int8 path covers a dynamic operand: per row (A) or per column (B) with
    /// one block per row/column of the product, or per tensor.
    private func fits(_ d: DynamicScale, _ x: Tensor, _ p: ActivationQDQ, columns: Bool) -> Bool {
        switch d.extent {
        case .tensor: return p.blockSize == 0
        case .rows: return !columns && p.blockSize == x.shape[x.rank - 1] && (p.axis == -1 || p.axis == x.rank - 1)
        case .columns: return columns && p.blockSize == x.shape[x.rank - 2] && (p.axis == -2 || p.axis == x.rank - 2)
        }
    }

    /// Scales and int8 values of `batch` matrices `[rows, cols]` with the absorbed scale
    /// subgraph: one scale per row, per column or for the tensor.
    private func quantizeDynamic(_ x: Tensor, _ d: DynamicScale, batch: Int, rows: Int, cols: Int,
                                 into q: UnsafeMutableBufferPointer<Int8>) throws -> [Float] {
        switch d.extent {
        case .rows:
            var scales = [Float](repeating: 0, count: batch * rows)
            try x.withElements(as: Float.self) { src in
                let s = try base(src), qp = try base(q)
                scales.withUnsafeMutableBufferPointer { out in
                    sq_quantize_rows_dynamic_s8(batch * rows, cols, s, qp, out.baseAddress, d.divisor, d.minScale, activationQMin)
                }
            }
            return scales
        case .columns:
            var scales = [Float](repeating: 0, count: batch * cols)
            try x.withElements(as: Float.self) { src in
                let s = try base(src), qp = try base(q)
                scales.withUnsafeMutableBufferPointer { out in
                    for i in 0..<batch {
                        sq_quantize_cols_dynamic_s8(rows, cols, s + i * rows * cols, qp + i * rows * cols,
                                                    out.baseAddress.map { $0 + i * cols }, d.divisor, d.minScale, activationQMin)
                    }
                }
            }
            return scales
        case .tensor:
            let absmax = try x.withElements(as: Float.self) { src in sq_absmax_nan_f32(src.count, try base(src)) }
            let scales = [d.scale(absmax: absmax)]
            try quantizeRows(x, rows: batch * rows, scales: scales, into: q)
            return scales
        }
    }

    /// Q, DQ and a float MatMul, with absorbed scales computed as the graph's nodes do.
    private func fallback(_ xa: Tensor, _ sa: Tensor?, _ xb: Tensor, _ sb: Tensor?, _ pool: BufferPool) throws -> Tensor {
        let scaleA = try sa ?? aDynamic.map { try $0.graphScale(of: xa, pool) } ?? required([sa], 0, "scale of A")
        let scaleB = try sb ?? bDynamic.map { try $0.graphScale(of: xb, pool) } ?? required([sb], 0, "scale of B")
        return try matmul(fakeQuantized(xa, scaleA, a, pool), fakeQuantized(xb, scaleB, b, pool), pool)
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

/// An absorbed dynamic scale subgraph `Max(Div(ReduceMax(Abs(x), axes), divisor), minScale)`:
/// per row (`axes=[-1]`, keepdims), per column (`axes=[-2]`, keepdims) or per tensor (all
/// axes, keepdims=0).
struct DynamicScale: Sendable, Equatable {
    enum Extent: Sendable, Equatable { case rows, columns, tensor }
    let extent: Extent
    let divisor: Float
    let minScale: Float

    /// The graph's Div and Max on one absmax (NaN propagates as the Max node does).
    func scale(absmax: Float) -> Float {
        let s = absmax / divisor
        return s.isNaN || minScale.isNaN ? .nan : (s < minScale ? minScale : s)
    }

    /// The scale tensor as the nodes compute it (for layouts the int8 path does not cover).
    func graphScale(of x: Tensor, _ pool: BufferPool) throws -> Tensor {
        let absolute = try x.withElements(as: Float.self) { src in
            try pool.make(Float.self, shape: x.shape) { out in for i in 0..<src.count { out[i] = Swift.abs(src[i]) } }
        }
        let axes: [Int] = switch extent { case .rows: [-1]; case .columns: [-2]; case .tensor: [] }
        let reduced = try required(ReduceKernel(reduction: .max, keepDims: extent != .tensor, noopWithEmptyAxes: false,
                                                attributeAxes: axes, axesFromInput: false).run([absolute], pool), 0)
        let divided = try arithmetic(.divide, reduced, Tensor(scalar: divisor), pool)
        return try arithmetic(.max, divided, Tensor(scalar: minScale), pool)
    }
}
