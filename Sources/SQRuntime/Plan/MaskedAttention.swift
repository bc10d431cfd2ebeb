import SQIR
import SQKernels

/// Attention as exported by causal LMs, run without the work its mask throws away:
///
///     MatMul(Softmax(Add(Div(MatMul(q, kᵀ), c), mask), axis = -1), v)
///
/// With a causal (or padding) mask, the scores of row i past some column L_i are masked out:
/// their mask is −∞ or ≤ −1e30 (exporters write the float32 minimum), so after the softmax they
/// are exactly 0 and add nothing to P·V. The kernel reads each mask row once, finds L_i (one
/// past the last column that is not masked out; the whole row when every column is), and for
/// each block of rows computes the scores, the softmax and P·V only over the columns up to the
/// block's largest L_i — about half of both products for a causal mask. The columns it skips
/// are exactly those whose probability is 0, so the result is that of the four nodes (masked
/// scores add exact zeros in the softmax sum and in P·V; a NaN or ±∞ in q or k that only a
/// masked score would have seen is not propagated). Anything else (other types, ranks, batch
/// broadcasting between the operands, a mask that does not broadcast) runs the nodes' kernels.
struct MaskedAttentionKernel: OpKernel {
    let divisor: Float
    /// Write the result as Transpose(·, perm = [0, 2, 1, 3]) (rank 4: [B, T, H, Dv]), the
    /// layout the heads are merged from.
    var transposeOutput = false

    /// Mask values at or below this are "masked out" (−∞, float32's minimum, −1e30 …).
    static let maskedOut: Float = -1e30
    /// Rows per block: the scores of a block are computed up to its longest row. Two of the
    /// AVX-512 fp32 micro-tiles (14 rows); under load 28 gave the smallest share of the run
    /// among 14, 16 and 28 on SmolLM2.
    static let blockRows = 28

    /// How q, kᵀ and v reach the products (nodes absorbed in front of them; none by default).
    var qChain = OperandChain(), kChain = OperandChain(), vChain = OperandChain()

    /// Inputs: [q's chain inputs, kᵀ's chain inputs, mask, v's chain inputs].
    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        let (qc, kc, vc) = (qChain.inputCount, kChain.inputCount, vChain.inputCount)
        let qInputs = Array(inputs[0..<qc]), kInputs = Array(inputs[qc..<(qc + kc)])
        let mask = try required(inputs, qc + kc, "mask")
        let vInputs = Array(inputs[(qc + kc + 1)..<(qc + kc + 1 + vc)])
        if let q = try qChain.view(qInputs, key: false), let k = try kChain.view(kInputs, key: true),
           let v = try vChain.view(vInputs, key: false),
           let shape = Self.shapes(q, mask, k, v), !transposeOutput || shape.lead.count == 2 {
            return [try fused(q, mask, k, v, shape, pool)]
        }
        let q = try qChain.materialize(qInputs, pool)
        let kt = try kChain.materialize(kInputs, pool), v = try vChain.materialize(vInputs, pool)
        let result = try unfused(q, kt, mask, v, pool)
        return transposeOutput ? try TransposeKernel(perm: [0, 2, 1, 3]).run(result, pool) : result
    }

    struct Shape { let batch: Int, t: Int, d: Int, s: Int, dv: Int, lead: [Int], maskStrides: [Int] }

    /// q [..., T, D], kᵀ [..., D, S], v [..., S, Dv] with the same leading dims; the mask
    /// float32, broadcasting to [..., T, S] with its last dim S.
    static func shapes(_ q: OperandView, _ mask: Tensor, _ k: OperandView, _ v: OperandView) -> Shape? {
        let lead = q.lead, r = q.lead.count + 2
        guard mask.dtype == .float, mask.rank <= r, k.lead == lead, v.lead == lead else { return nil }
        let t = q.rows, d = q.columns, s = k.columns, dv = v.columns
        guard k.rows == d, v.rows == s, t > 0, d > 0, s > 0, dv > 0,
              mask.shape.last == s, (try? broadcastShape([lead + [t, s], mask.shape])) == lead + [t, s] else { return nil }
        // Strides of the mask over [..., T] (0 where it broadcasts); its rows are contiguous.
        let padded = [Int](repeating: 1, count: r - mask.rank) + mask.shape
        let strides = contiguousStrides(padded)
        let maskStrides = (0..<(r - 1)).map { padded[$0] == 1 ? 0 : strides[$0] }
        return Shape(batch: lead.reduce(1, *), t: t, d: d, s: s, dv: dv, lead: lead, maskStrides: maskStrides)
    }

    private func unfused(_ q: Tensor, _ kt: Tensor, _ mask: Tensor, _ v: Tensor, _ pool: BufferPool) throws -> [Tensor?] {
        let scores = try matmul(q, kt, pool)
        let p = try required(ScaledSoftmaxKernel(divisor: divisor).run([scores, mask], pool), 0)
        return [try matmul(p, v, pool)]
    }

    private func fused(_ qView: OperandView, _ mask: Tensor, _ kView: OperandView, _ vView: OperandView, _ shape: Shape,
                       _ pool: BufferPool) throws -> Tensor {
        let (batch, t, d, s, dv) = (shape.batch, shape.t, shape.d, shape.s, shape.dv)
        let divisor = self.divisor, lda = qView.ld
        return try qView.tensor.withElements(as: Float.self) { eq in
            try kView.tensor.withElements(as: Float.self) { ek in
                try mask.withElements(as: Float.self) { em in
                    try vView.tensor.withElements(as: Float.self) { ev in
                        // Row i of product (b, h) starts at ((b·T + i)·H + h)·Dv when transposed.
                        let heads = transposeOutput ? shape.lead[1] : 1
                        let outShape = transposeOutput ? [shape.lead[0], t, heads, dv] : shape.lead + [t, dv]
                        let ldo = heads * dv
                        return try pool.make(Float.self, shape: outShape) { out in
                            let args = UncheckedSendable((q: try base(eq), k: try base(ek), m: try base(em),
                                                          v: try base(ev), o: try base(out)))
                            let operations = 2.0 * Double(batch) * Double(t) * Double(s) * Double(d + dv)
                            let status = KernelStatus()
                            let partition = GemmPartition(rows: batch, panels: 0, operations: operations,
                                                          minOperationsPerThread: f32MinOperationsPerThread,
                                                          threads: KernelThreads.defaultCount)
                            partition.run { piece in
                                let p = args.value
                                let kPacked = allocateAligned(Float.self, count: sq_f32_packed_size(d, s))
                                let vPacked = allocateAligned(Float.self, count: sq_f32_packed_size(s, dv))
                                let scores = allocateAligned(Float.self, count: Self.blockRows * s)
                                let probabilities = allocateAligned(Float.self, count: Self.blockRows * s)
                                var extent = [Int](repeating: s, count: t)
                                defer { for b in [kPacked, vPacked, scores, probabilities] { b.deallocate() } }
                                var extentBase = -1  // the mask rows `extent` was read from (heads share them)
                                let vPanels = (dv + Int(SQ_PANEL_COLS) - 1) / Int(SQ_PANEL_COLS)
                                for index in partition.batchRange(piece, of: batch) {
                                    let maskBase = Self.maskOffset(index, rows: t, shape)
                                    let rowStride = shape.maskStrides[shape.maskStrides.count - 1]
                                    if maskBase != extentBase {
                                        for i in 0..<t { extent[i] = Self.extent(p.m + maskBase + i * rowStride, s) }
                                        extentBase = maskBase
                                    }
                                    kView.pack(p.k, index, into: kPacked)
                                    // v once, all s rows: a panel's first `width` rows are the
                                    // packed panel of v's first `width` rows (`…_prefix`).
                                    vView.pack(p.v, index, into: vPacked)
                                    let qBase = p.q + qView.offset(index)
                                    let oBase = p.o + (index / heads) * t * ldo + (index % heads) * dv
                                    for i0 in stride(from: 0, to: t, by: Self.blockRows) {
                                        let rows = min(Self.blockRows, t - i0)
                                        let longest = extent[i0..<(i0 + rows)].max() ?? s
                                        // Whole panels of 32 columns, as the GEMM computes them.
                                        let panels = (longest + Int(SQ_PANEL_COLS) - 1) / Int(SQ_PANEL_COLS)
                                        let width = min(s, panels * Int(SQ_PANEL_COLS))
                                        status.record(sq_f32_gemm_small(rows, s, d, qBase + i0 * lda, lda, kPacked, d * Int(SQ_PANEL_COLS),
                                                                        0, panels, scores, s))
                                        for r in 0..<rows {
                                            sq_softmax_row_scaled_f32(width, scores + r * s, divisor,
                                                                      p.m + maskBase + (i0 + r) * rowStride,
                                                                      probabilities + r * width)
                                        }
                                        status.record(sq_f32_gemm_small(rows, dv, width, probabilities, width,
                                                                        vPacked, s * Int(SQ_PANEL_COLS), 0, vPanels,
                                                                        oBase + i0 * ldo, ldo))
                                    }
                                }
                            }
                            try status.check()
                        }
                    }
                }
            }
        }
    }

    /// Element offset of product `index`'s first mask row.
    static func maskOffset(_ index: Int, rows: Int, _ shape: Shape) -> Int {
        var offset = 0, rest = index
        for d in stride(from: shape.lead.count - 1, through: 0, by: -1) {
            offset += (rest % shape.lead[d]) * shape.maskStrides[d]
            rest /= shape.lead[d]
        }
        return offset
    }

    /// One past the last column of a mask row that is not masked out; the whole row when every
    /// column is masked out (the softmax of such a row is not zero outside any prefix).
    static func extent(_ row: UnsafePointer<Float>, _ s: Int) -> Int {
        var j = s
        while j > 0 && row[j - 1] <= maskedOut { j -= 1 }
        return j == 0 ? s : j
    }
}

/// An operand of `MaskedAttentionKernel` as a view of the tensor it was laid out from: the
/// matrix [rows, columns] of product `index` (q [T, D], kᵀ [D, S] or v [S, Dv]), read (q) or
/// packed (kᵀ, v) straight from the source, the heads of a grouped-query repeat sharing one
/// source head.
struct OperandView {
    let tensor: Tensor
    let lead: [Int]
    let rows: Int, columns: Int
    /// Source rows are B's columns (k read as [S, D] for kᵀ).
    let transposed: Bool
    /// Source elements between consecutive rows (or columns when transposed).
    let ld: Int
    /// Product index = b·heads + h; source offset = b·batchStride + (h / group)·headStride.
    let heads: Int, group: Int, batchStride: Int, headStride: Int

    /// Where product `index`'s matrix starts in the source.
    func offset(_ index: Int) -> Int { (index / heads) * batchStride + ((index % heads) / group) * headStride }

    func pack(_ base: UnsafePointer<Float>, _ index: Int, into packed: UnsafeMutablePointer<Float>) {
        sq_f32_pack_b(base + offset(index), ld, transposed ? 1 : 0, rows, columns, packed)
    }
}

/// The layout nodes in front of an attention operand that the kernel reads through instead of
/// running (outermost last):
///
///     [Transpose(perm = [0, 2, 1, 3])]                       headTranspose (x is [B, S, Hkv, D])
///     [Reshape(Expand(Unsqueeze(·, [2]), [B, Hkv, g, S, D]), [B, Hkv·g, S, D])]   repeatKV
///     [Transpose(perm = [0, 1, 3, 2])]                       lastTranspose (kᵀ from k)
///
/// Inputs: [source, (Unsqueeze's axes input), Expand's shape, Reshape's shape] as present. The
/// shapes are checked when the step runs; anything else runs the nodes' kernels.
struct OperandChain: Sendable {
    var headTranspose = false
    var repeatKV = false
    /// Unsqueeze's axes attribute (older opsets); nil: its axes input.
    var unsqueezeAxes: [Int]?
    var allowZero = false
    var lastTranspose = false

    var inputCount: Int { 1 + (repeatKV ? (unsqueezeAxes == nil ? 3 : 2) : 0) }

    /// The operand as the nodes compute it.
    func materialize(_ inputs: [Tensor?], _ pool: BufferPool) throws -> Tensor {
        var x = try required(inputs, 0)
        if headTranspose { x = try required(TransposeKernel(perm: [0, 2, 1, 3]).run([x], pool), 0) }
        if repeatKV {
            let axesInput = unsqueezeAxes == nil ? [inputs[1]] : []
            x = try required(UnsqueezeKernel(attributeAxes: unsqueezeAxes).run([x] + axesInput, pool), 0)
            x = try required(ExpandKernel().run([x, inputs[inputCount - 2]], pool), 0)
            x = try required(ReshapeKernel(allowZero: allowZero).run([x, inputs[inputCount - 1]], pool), 0)
        }
        if lastTranspose {
            let r = x.rank
            guard r >= 2 else { throw OpError("kᵀ needs rank ≥ 2, got \(x.shape)") }
            x = try required(TransposeKernel(perm: Array(0..<(r - 2)) + [r - 1, r - 2]).run([x], pool), 0)
        }
        return x
    }

    /// The view the fused kernel reads (`key`: the operand is kᵀ), or nil when the shapes are
    /// not the ones the chain's nodes would merely lay out.
    func view(_ inputs: [Tensor?], key: Bool) throws -> OperandView? {
        let x = try required(inputs, 0)
        guard x.dtype == .float, x.rank >= 2 else { return nil }
        if !headTranspose && !repeatKV {
            // kᵀ [..., D, S], k [..., S, D] (lastTranspose) or v [..., S, Dv], contiguous per product.
            let r = x.rank
            let (a, b) = (x.shape[r - 2], x.shape[r - 1])
            let (rows, columns) = lastTranspose ? (b, a) : (a, b)
            return OperandView(tensor: x, lead: Array(x.shape.prefix(r - 2)), rows: rows, columns: columns,
                               transposed: lastTranspose, ld: b, heads: 1, group: 1, batchStride: a * b, headStride: 0)
        }
        guard x.rank == 4, key == lastTranspose else { return nil }
        let (batch, kvHeads, s, d) = headTranspose ? (x.shape[0], x.shape[2], x.shape[1], x.shape[3])
            : (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        var group = 1
        if repeatKV {
            let axes = try unsqueezeAxes ?? required(inputs, 1, "axes").intValues("axes")
            let expand = try required(inputs, inputCount - 2, "shape").intValues("the shape")
            let reshape = try required(inputs, inputCount - 1, "shape").intValues("the shape")
            guard axes == [2] || axes == [-3], expand.count == 5, expand[0] == batch, expand[1] == kvHeads,
                  expand[3] == s, expand[4] == d, expand[2] >= 1,
                  (try? reshapeTarget([batch, kvHeads, expand[2], s, d], reshape, allowZero: allowZero))
                    == [batch, kvHeads * expand[2], s, d] else { return nil }
            group = expand[2]
        }
        let heads = kvHeads * group
        let (batchStride, headStride, rowStride) = headTranspose ? (s * kvHeads * d, d, kvHeads * d) : (kvHeads * s * d, s * d, d)
        return OperandView(tensor: x, lead: [batch, heads], rows: key ? d : s, columns: key ? s : d, transposed: key,
                           ld: rowStride, heads: heads, group: group, batchStride: batchStride, headStride: headStride)
    }
}
