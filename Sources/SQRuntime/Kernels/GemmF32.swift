// fp32 GEMM: packed constant weights and the entry points the interpreter calls.
// Layout everywhere: dense row-major, no padding between rows.
import SQIR
import SQKernels

/// A constant fp32 right-hand matrix `B[k, n]`, packed once into the kernels' panel layout
/// (⌈n/32⌉ panels of k rows × 32 columns). Immutable after `init`, so it can be shared by
/// any number of threads.
public final class PackedFloat32Weights: @unchecked Sendable {
    /// Rows of B (the reduction dimension).
    public let k: Int
    /// Columns of B (the output features).
    public let n: Int
    let storage: UnsafeMutablePointer<Float>

    /// Packs `values`, which holds B as `[k, n]`, or — when `transposed` — Bᵀ as `[n, k]`
    /// (the `[out, in]` layout of Linear weights and of Gemm with transB = 1).
    /// Throws `KernelError` if `values` has fewer than k·n elements.
    public convenience init(k: Int, n: Int, values: UnsafeBufferPointer<Float>,
                            transposed: Bool = false) throws {
        let storage = try PackedFloat32Weights.pack(k: k, n: n, values: values, transposed: transposed)
        self.init(k: k, n: n, storage: storage)
    }

    /// Packs an array holding B as `[k, n]` (or Bᵀ as `[n, k]` when `transposed`).
    public convenience init(k: Int, n: Int, values: [Float], transposed: Bool = false) throws {
        let storage = try values.withUnsafeBufferPointer {
            try PackedFloat32Weights.pack(k: k, n: n, values: $0, transposed: transposed)
        }
        self.init(k: k, n: n, storage: storage)
    }

    private init(k: Int, n: Int, storage: UnsafeMutablePointer<Float>) {
        self.k = k
        self.n = n
        self.storage = storage
    }

    private static func pack(k: Int, n: Int, values: UnsafeBufferPointer<Float>,
                             transposed: Bool) throws -> UnsafeMutablePointer<Float> {
        try checkDimensions(("k", k), ("n", n))
        try checkCount("values", values.count, k * n)
        let storage = allocateAligned(Float.self, count: sq_f32_packed_size(k, n))
        if k > 0 && n > 0 {
            sq_f32_pack_b(values.baseAddress, transposed ? k : n, transposed ? 1 : 0, k, n, storage)
        }
        return storage
    }

    deinit { storage.deallocate() }
}

/// `out[m, n] = (accumulate ? out : 0) + a[m, k] · B[k, n] (+ bias[n])` with packed B.
///
/// - Parameters:
///   - a: `[m, k]` row-major, at least m·k elements.
///   - b: packed weights; fixes k and n.
///   - out: `[m, n]` row-major, at least m·n elements; must not overlap `a` or `bias`.
///   - bias: n values added to every row, or nil.
///   - accumulate: add to the existing contents of `out` instead of overwriting.
///   - threads: upper bound on threads; small problems (< ≈ 20 µs of work per thread) run on the
///     calling thread only. The result is bit-identical for any thread count.
/// - Throws: `KernelError` when a buffer is too small.
public func gemmF32(a: UnsafeBufferPointer<Float>, m: Int, b: PackedFloat32Weights,
                    out: UnsafeMutableBufferPointer<Float>,
                    bias: UnsafeBufferPointer<Float>? = nil, accumulate: Bool = false,
                    threads: Int = KernelThreads.defaultCount) throws {
    let (k, n) = (b.k, b.n)
    try checkDimensions(("m", m))
    try checkCount("a", a.count, m * k)
    try checkCount("out", out.count, m * n)
    if let bias { try checkCount("bias", bias.count, n) }
    let status = KernelStatus()
    withExtendedLifetime(b) {
        gemmF32Unchecked(m: m, n: n, k: k, a: a.baseAddress, packed: b.storage,
                         out: out.baseAddress, bias: bias?.baseAddress,
                         accumulate: accumulate, threads: threads, status: status)
    }
    try status.check()
}

/// `out[m, n] = (accumulate ? out : 0) + a[m, k] · B (+ bias[n])` for a B that changes
/// every call (attention's Q·Kᵀ and P·V): B is `[k, n]`, or `[n, k]` when `transposeB`
/// (then the product is a · bᵀ). B is packed into a temporary first; otherwise as the
/// packed `gemmF32`.
public func gemmF32(a: UnsafeBufferPointer<Float>, b: UnsafeBufferPointer<Float>,
                    m: Int, k: Int, n: Int, transposeB: Bool = false,
                    out: UnsafeMutableBufferPointer<Float>,
                    bias: UnsafeBufferPointer<Float>? = nil, accumulate: Bool = false,
                    threads: Int = KernelThreads.defaultCount) throws {
    try batchedGemmF32(a: a, b: b, batch: 1, m: m, k: k, n: n, transposeB: transposeB,
                       out: out, bias: bias, accumulate: accumulate, threads: threads)
}

/// `batch` independent products `out[i] = a[i] · b[i]` over contiguous stacks:
/// a `[batch, m, k]`, b `[batch, k, n]` (or `[batch, n, k]` when `transposeB`),
/// out `[batch, m, n]`; bias (n values) is added to every row of every product.
/// Threads split the batch when it is large enough, else each product.
public func batchedGemmF32(a: UnsafeBufferPointer<Float>, b: UnsafeBufferPointer<Float>,
                           batch: Int, m: Int, k: Int, n: Int, transposeB: Bool = false,
                           out: UnsafeMutableBufferPointer<Float>,
                           bias: UnsafeBufferPointer<Float>? = nil, accumulate: Bool = false,
                           threads: Int = KernelThreads.defaultCount) throws {
    try checkDimensions(("batch", batch), ("m", m), ("k", k), ("n", n))
    try checkCount("a", a.count, batch * m * k)
    try checkCount("b", b.count, batch * k * n)
    try checkCount("out", out.count, batch * m * n)
    if let bias { try checkCount("bias", bias.count, n) }
    if batch == 0 || m == 0 || n == 0 { return }
    let packedCount = sq_f32_packed_size(k, n)
    let args = UncheckedSendable((a: a.baseAddress, b: b.baseAddress, out: out.baseAddress,
                                  bias: bias?.baseAddress))
    let status = KernelStatus()
    // One product: pack its B into `scratch`, then multiply on `innerThreads` threads.
    @Sendable func product(_ index: Int, scratch: UnsafeMutablePointer<Float>, innerThreads: Int) {
        let p = args.value
        if k > 0 {
            sq_f32_pack_b(p.b.map { $0 + index * k * n }, transposeB ? k : n,
                          transposeB ? 1 : 0, k, n, scratch)
        }
        gemmF32Unchecked(m: m, n: n, k: k, a: p.a.map { $0 + index * m * k }, packed: scratch,
                         out: p.out.map { $0 + index * m * n }, bias: p.bias,
                         accumulate: accumulate, threads: innerThreads, status: status)
    }
    let operations = 2.0 * Double(m) * Double(n) * Double(k)
    let outer = GemmPartition(rows: batch, panels: 0, operations: operations * Double(batch),
                              minOperationsPerThread: f32MinOperationsPerThread,
                              threads: threads)
    if batch >= 2 && outer.pieces >= 2 {
        outer.run { piece in
            let scratch = allocateAligned(Float.self, count: packedCount)
            defer { scratch.deallocate() }
            for index in outer.batchRange(piece, of: batch) {
                product(index, scratch: scratch, innerThreads: 1)
            }
        }
    } else {
        let scratch = allocateAligned(Float.self, count: packedCount)
        defer { scratch.deallocate() }
        for index in 0..<batch { product(index, scratch: scratch, innerThreads: threads) }
    }
    try status.check()
}

/// `minSecondsPerThread` of fp32 work at ≈ 100 GFLOPS.
let f32MinOperationsPerThread = 1.0e11 * minSecondsPerThread

/// The threaded core: no argument checks; pointers may be nil only where the matching
/// dimension is zero.
func gemmF32Unchecked(m: Int, n: Int, k: Int, a: UnsafePointer<Float>?,
                      packed: UnsafePointer<Float>?, out: UnsafeMutablePointer<Float>?,
                      bias: UnsafePointer<Float>?, accumulate: Bool, threads: Int,
                      status: KernelStatus, minStreamedBytes: Double = minStreamedBytesPerThread) {
    if m == 0 || n == 0 { return }
    let panels = (n + Int(SQ_PANEL_COLS) - 1) / Int(SQ_PANEL_COLS)
    let partition = GemmPartition(rows: m, panels: panels,
                                  operations: 2.0 * Double(m) * Double(n) * Double(k),
                                  minOperationsPerThread: f32MinOperationsPerThread,
                                  threads: threads, weightBytes: 4 * k * n,
                                  streamedBytes: 4 * k * n, minStreamedBytes: minStreamedBytes)
    let args = UncheckedSendable((a: a, packed: packed, out: out, bias: bias))
    partition.run { piece in
        let p = args.value
        let range = partition.range(piece)
        if range.isEmpty { return }
        switch partition.axis {
        case .panels:
            status.record(sq_f32_gemm_packed(m, n, k, p.a, k, p.packed, range.lowerBound,
                                             range.upperBound, p.out, n, p.bias, accumulate ? 1 : 0))
        case .rows:
            status.record(sq_f32_gemm_packed(range.count, n, k, p.a.map { $0 + range.lowerBound * k },
                                             k, p.packed, 0, panels,
                                             p.out.map { $0 + range.lowerBound * n }, n, p.bias,
                                             accumulate ? 1 : 0))
        }
    }
}

/// 64-byte aligned, uninitialized storage for `count` elements (at least one); large
/// blocks (packed weights) are advised to use huge pages.
func allocateAligned<T>(_ type: T.Type, count: Int) -> UnsafeMutablePointer<T> {
    let raw = UnsafeMutableRawPointer.allocate(byteCount: max(1, count) * MemoryLayout<T>.stride,
                                               alignment: 64)
    TensorStorage.adviseHugePages(raw, byteCount: max(1, count) * MemoryLayout<T>.stride)
    return raw.bindMemory(to: T.self, capacity: max(1, count))
}
