// int8 products whose both operands are computed at run time (attention's Q·Kᵀ and P·V
// in W8A8): B is packed into a scratch buffer per product.
import SQKernels

/// `batch` independent products over contiguous stacks, exact int32 accumulation:
/// `out[i] = float(a[i] · b[i]) · (aScale · bScale)`.
///
/// - Parameters:
///   - a: s8 `[batch, m, k]`; aScales: batch·m values (per row) or 1 (per tensor).
///   - b: s8 `[batch, k, n]`, or `[batch, n, k]` when `transposeB` (then the product is
///     a · bᵀ, e.g. Q·Kᵀ with K stored `[tokens, headDim]`); bScales: batch·n values
///     (per column of the product, e.g. per key token) or 1 (per tensor).
///   - out: float `[batch, m, n]`.
///   - threads: upper bound; the batch is split between threads when large enough.
///     Bit-identical for any thread count.
/// - Throws: `KernelError` on a size mismatch.
public func batchedGemmInt8(a: UnsafeBufferPointer<Int8>, aScales: UnsafeBufferPointer<Float>,
                            b: UnsafeBufferPointer<Int8>, bScales: UnsafeBufferPointer<Float>,
                            batch: Int, m: Int, k: Int, n: Int, transposeB: Bool = false,
                            out: UnsafeMutableBufferPointer<Float>,
                            threads: Int = KernelThreads.defaultCount) throws {
    try checkDimensions(("batch", batch), ("m", m), ("k", k), ("n", n))
    try checkCount("a", a.count, batch * m * k)
    try checkCount("b", b.count, batch * k * n)
    try checkCount("out", out.count, batch * m * n)
    let aPerRow = aScales.count == batch * m && batch * m != 1
    let bPerColumn = bScales.count == batch * n && batch * n != 1
    guard aPerRow || aScales.count == 1 else {
        throw KernelError.invalidArgument("activation scales: \(aScales.count) values for batch·m = \(batch * m) (need that or 1)")
    }
    guard bPerColumn || bScales.count == 1 else {
        throw KernelError.invalidArgument("B scales: \(bScales.count) values for batch·n = \(batch * n) (need that or 1)")
    }
    if batch == 0 || m == 0 || n == 0 { return }
    let packedBytes = sq_s8_packed_size(k, n)
    let args = UncheckedSendable((a: a.baseAddress, b: b.baseAddress, out: out.baseAddress,
                                  aScales: aScales.baseAddress, bScales: bScales.baseAddress))
    let status = KernelStatus()
    @Sendable func product(_ index: Int, scratch: UnsafeMutablePointer<UInt8>, innerThreads: Int) {
        let p = args.value
        sq_s8_pack_b(p.b.map { $0 + index * k * n }, transposeB ? k : n, transposeB ? 1 : 0,
                     k, n, scratch)
        gemmInt8Unchecked(m: m, n: n, k: k, a: p.a.map { $0 + index * m * k }, packed: scratch,
                          out: .float(p.out.map { $0 + index * m * n }),
                          aScales: aPerRow ? p.aScales.map { $0 + index * m } : p.aScales,
                          aPerRow: aPerRow,
                          bScales: bPerColumn ? p.bScales.map { $0 + index * n } : p.bScales,
                          bPerColumn: bPerColumn, bias: nil, threads: innerThreads, status: status)
    }
    let operations = 2.0 * Double(m) * Double(n) * Double(k)
    let outer = GemmPartition(rows: batch, panels: 0, operations: operations * Double(batch),
                              minOperationsPerThread: int8MinOperationsPerThread,
                              threads: threads)
    if batch >= 2 && outer.pieces >= 2 {
        outer.run { piece in
            let scratch = allocateAligned(UInt8.self, count: packedBytes)
            defer { scratch.deallocate() }
            for index in outer.batchRange(piece, of: batch) {
                product(index, scratch: scratch, innerThreads: 1)
            }
        }
    } else {
        let scratch = allocateAligned(UInt8.self, count: packedBytes)
        defer { scratch.deallocate() }
        for index in 0..<batch { product(index, scratch: scratch, innerThreads: threads) }
    }
    try status.check()
}
