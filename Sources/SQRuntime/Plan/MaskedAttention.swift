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

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        let q = try required(inputs, 0), kt = try required(inputs, 1, "kᵀ")
        let mask = try required(inputs, 2, "mask"), v = try required(inputs, 3, "v")
        guard let shape = Self.shapes(q, kt, mask, v), !transposeOutput || q.rank == 4 else {
            let result = try unfused(q, kt, mask, v, pool)
            return transposeOutput ? try TransposeKernel(perm: [0, 2, 1, 3]).run(result, pool) : result
        }
        return [try fused(q, kt, mask, v, shape, pool)]
    }

    struct Shape { let batch: Int, t: Int, d: Int, s: Int, dv: Int, lead: [Int], maskStrides: [Int] }

    /// q [..., T, D], kᵀ [..., D, S], v [..., S, Dv] with the same leading dims, all float32;
    /// the mask float32, broadcasting to [..., T, S] with its last dim S.
    static func shapes(_ q: Tensor, _ kt: Tensor, _ mask: Tensor, _ v: Tensor) -> Shape? {
        guard q.dtype == .float, kt.dtype == .float, mask.dtype == .float, v.dtype == .float,
              q.rank >= 2, kt.rank == q.rank, v.rank == q.rank, mask.rank <= q.rank else { return nil }
        let r = q.rank
        let lead = Array(q.shape.prefix(r - 2))
        guard Array(kt.shape.prefix(r - 2)) == lead, Array(v.shape.prefix(r - 2)) == lead else { return nil }
        let t = q.shape[r - 2], d = q.shape[r - 1], s = kt.shape[r - 1], dv = v.shape[r - 1]
        guard kt.shape[r - 2] == d, v.shape[r - 2] == s, t > 0, d > 0, s > 0, dv > 0,
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

    private func fused(_ q: Tensor, _ kt: Tensor, _ mask: Tensor, _ v: Tensor, _ shape: Shape,
                       _ pool: BufferPool) throws -> Tensor {
        let (batch, t, d, s, dv) = (shape.batch, shape.t, shape.d, shape.s, shape.dv)
        let divisor = self.divisor
        return try q.withElements(as: Float.self) { eq in
            try kt.withElements(as: Float.self) { ek in
                try mask.withElements(as: Float.self) { em in
                    try v.withElements(as: Float.self) { ev in
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
                                    sq_f32_pack_b(p.k + index * d * s, s, 0, d, s, kPacked)
                                    // v once, all s rows: a panel's first `width` rows are the
                                    // packed panel of v's first `width` rows (`…_prefix`).
                                    sq_f32_pack_b(p.v + index * s * dv, dv, 0, s, dv, vPacked)
                                    let qBase = p.q + index * t * d
                                    let oBase = p.o + (index / heads) * t * ldo + (index % heads) * dv
                                    for i0 in stride(from: 0, to: t, by: Self.blockRows) {
                                        let rows = min(Self.blockRows, t - i0)
                                        let longest = extent[i0..<(i0 + rows)].max() ?? s
                                        // Whole panels of 32 columns, as the GEMM computes them.
                                        let panels = (longest + Int(SQ_PANEL_COLS) - 1) / Int(SQ_PANEL_COLS)
                                        let width = min(s, panels * Int(SQ_PANEL_COLS))
                                        status.record(sq_f32_gemm_small(rows, s, d, qBase + i0 * d, d, kPacked, d * Int(SQ_PANEL_COLS),
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
