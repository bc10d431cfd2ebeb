// int8 GEMM (s8 × s8 → exact int32 → fused float epilogue) and activation quantization.
// Layout everywhere: dense row-major, no padding between rows.
import SQKernels

/// Constant int8 weights `B[k, n]` with their scales, packed once into the kernels' layout
/// (32-column panels of k-quads plus the −128·colsum(B) correction). Immutable after
/// `init`, so it can be shared by any number of threads.
public final class PackedInt8Weights: @unchecked Sendable {
    /// Rows of B (the reduction dimension).
    public let k: Int
    /// Columns of B (the output features).
    public let n: Int
    /// Dequantization scales: n values (per output channel) or 1 (per tensor).
    public let scales: [Float]
    let storage: UnsafeMutablePointer<UInt8>

    /// Packs `values`, B as `[k, n]` or — when `transposed` — Bᵀ as `[n, k]` (the
    /// `[out, in]` layout of Linear weights). `scales` holds n or 1 values; the weight
    /// matrix in float is `values · scales`. Throws `KernelError` on a size mismatch.
    public convenience init(k: Int, n: Int, values: UnsafeBufferPointer<Int8>, scales: [Float],
                            transposed: Bool = false) throws {
        let storage = try PackedInt8Weights.pack(k: k, n: n, values: values, scales: scales,
                                                 transposed: transposed)
        self.init(k: k, n: n, scales: scales, storage: storage)
    }

    /// Packs an array holding B as `[k, n]` (or Bᵀ as `[n, k]` when `transposed`).
    public convenience init(k: Int, n: Int, values: [Int8], scales: [Float],
                            transposed: Bool = false) throws {
        let storage = try values.withUnsafeBufferPointer {
            try PackedInt8Weights.pack(k: k, n: n, values: $0, scales: scales, transposed: transposed)
        }
        self.init(k: k, n: n, scales: scales, storage: storage)
    }

    private init(k: Int, n: Int, scales: [Float], storage: UnsafeMutablePointer<UInt8>) {
        self.k = k
        self.n = n
        self.scales = scales
        self.storage = storage
    }

    private static func pack(k: Int, n: Int, values: UnsafeBufferPointer<Int8>, scales: [Float],
                             transposed: Bool) throws -> UnsafeMutablePointer<UInt8> {
        try checkDimensions(("k", k), ("n", n))
        try checkCount("values", values.count, k * n)
        guard scales.count == n || scales.count == 1 else {
            throw KernelError.invalidArgument("weight scales: \(scales.count) values for n = \(n) (need n or 1)")
        }
        let storage = allocateAligned(UInt8.self, count: sq_s8_packed_size(k, n))
        if n > 0 {
            sq_s8_pack_b(values.baseAddress, transposed ? k : n, transposed ? 1 : 0, k, n, storage)
        }
        return storage
    }

    deinit { storage.deallocate() }
}

/// How activations are quantized before an int8 GEMM.
public enum ActivationQuantization: Sendable, Equatable {
    /// One scale per row (token), absmax/127 computed at run time (SmoothQuant O1).
    case perToken
    /// One given scale for the whole tensor (O2 computes it at run time, O3 is static).
    case perTensor(scale: Float)
}

/// Symmetric int8 quantization of `rows` rows of `cols` floats:
/// `q = clamp(roundHalfEven(x / scale), saturateLow, 127)`.
///
/// - `.perToken`: each row's scale is absmax(row)/127, written to `scales` (rows values);
///   an all-zero row gets scale 0 and quantizes to 0.
/// - `.perTensor(scale)`: every row uses `scale`; `scales` may be empty. A scale that is
///   not positive quantizes everything to 0.
/// - `saturateLow`: −127 (symmetric, the default) or −128 (ONNX QuantizeLinear's range);
///   `Int8Codes` says which quantizer uses which.
/// NaN inputs quantize to `saturateLow`. Every ISA path and thread count gives the same
/// bits; rows are split between up to `threads` threads when there are enough.
public func quantizeRowsInt8(_ x: UnsafeBufferPointer<Float>, rows: Int, cols: Int,
                             mode: ActivationQuantization,
                             into q: UnsafeMutableBufferPointer<Int8>,
                             scales: UnsafeMutableBufferPointer<Float>,
                             saturateLow: Int8 = Int8Codes.symmetricLowerBound,
                             threads: Int = KernelThreads.defaultCount) throws {
    try checkDimensions(("rows", rows), ("cols", cols))
    try checkCount("x", x.count, rows * cols)
    try checkCount("q", q.count, rows * cols)
    guard saturateLow == Int8Codes.symmetricLowerBound || saturateLow == Int8Codes.fullLowerBound else {
        throw KernelError.invalidArgument("saturateLow must be -127 or -128, not \(saturateLow)")
    }
    let perTensorScale: Float
    switch mode {
    case .perToken:
        try checkCount("scales", scales.count, rows)
        perTensorScale = 0
    case .perTensor(let scale):
        perTensorScale = scale
    }
    // Rows are independent: split them between threads when there are enough
    // (≈ 5 elements per ns on one core).
    let partition = GemmPartition(rows: rows, panels: 0, operations: Double(rows * cols),
                                  minOperationsPerThread: 5e9 * minSecondsPerThread,
                                  threads: threads)
    let args = UncheckedSendable((x: x.baseAddress, q: q.baseAddress,
                                  scales: mode == .perToken ? scales.baseAddress : nil))
    let low = Int32(saturateLow)
    partition.run { piece in
        let range = partition.range(piece)
        let p = args.value
        sq_quantize_rows_s8(range.count, cols, p.x.map { $0 + range.lowerBound * cols }, cols,
                            p.q.map { $0 + range.lowerBound * cols }, cols,
                            p.scales.map { $0 + range.lowerBound }, perTensorScale, low)
    }
}

/// `out[m, n] = float(a · B) · (aScale · bScale) (+ bias[n])`, exact int32 accumulation.
///
/// - Parameters:
///   - a: s8 `[m, k]`, the full range −128…127 is allowed.
///   - aScales: m values (per row / token) or 1 (per tensor).
///   - b: packed weights; fixes k, n and the weight scales.
///   - out: `[m, n]` floats; bias: n values or nil.
///   - threads: upper bound; small problems stay on the calling thread. Bit-identical
///     for any thread count.
public func gemmInt8(a: UnsafeBufferPointer<Int8>, m: Int, aScales: UnsafeBufferPointer<Float>,
                     b: PackedInt8Weights, out: UnsafeMutableBufferPointer<Float>,
                     bias: UnsafeBufferPointer<Float>? = nil,
                     threads: Int = KernelThreads.defaultCount) throws {
    try checkDimensions(("m", m))
    try checkCount("a", a.count, m * b.k)
    try checkCount("out", out.count, m * b.n)
    guard aScales.count == m || aScales.count == 1 else {
        throw KernelError.invalidArgument("activation scales: \(aScales.count) values for m = \(m) (need m or 1)")
    }
    if let bias { try checkCount("bias", bias.count, b.n) }
    let status = KernelStatus()
    withExtendedLifetime(b) {
        b.scales.withUnsafeBufferPointer { bScales in
            gemmInt8Unchecked(m: m, n: b.n, k: b.k, a: a.baseAddress, packed: b.storage,
                              out: .float(out.baseAddress), aScales: aScales.baseAddress,
                              aPerRow: aScales.count == m && m != 1,
                              bScales: bScales.baseAddress, bPerColumn: bScales.count == b.n && b.n != 1,
                              bias: bias?.baseAddress, threads: threads, status: status)
        }
    }
    try status.check()
}

/// `out[m, n] = a · B` as raw int32 accumulators (no scales); for callers that rescale
/// themselves (e.g. ONNX MatMulInteger with zero points 0).
public func gemmInt8(a: UnsafeBufferPointer<Int8>, m: Int, b: PackedInt8Weights,
                     out: UnsafeMutableBufferPointer<Int32>,
                     threads: Int = KernelThreads.defaultCount) throws {
    try checkDimensions(("m", m))
    try checkCount("a", a.count, m * b.k)
    try checkCount("out", out.count, m * b.n)
    let status = KernelStatus()
    withExtendedLifetime(b) {
        gemmInt8Unchecked(m: m, n: b.n, k: b.k, a: a.baseAddress, packed: b.storage,
                          out: .int32(out.baseAddress), aScales: nil, aPerRow: false,
                          bScales: nil, bPerColumn: false, bias: nil, threads: threads,
                          status: status)
    }
    try status.check()
}

/// A W8A8 linear layer in one call: quantize the float rows `x[m, k]` (`activation`), then
/// `out[m, n] = gemmInt8(...) (+ bias)`. Allocates the int8 scratch it needs.
public func linearInt8(x: UnsafeBufferPointer<Float>, m: Int, activation: ActivationQuantization,
                       weights: PackedInt8Weights, out: UnsafeMutableBufferPointer<Float>,
                       bias: UnsafeBufferPointer<Float>? = nil,
                       threads: Int = KernelThreads.defaultCount) throws {
    try checkDimensions(("m", m))
    let k = weights.k
    try checkCount("x", x.count, m * k)
    let quantized = UnsafeMutableBufferPointer<Int8>.allocate(capacity: max(1, m * k))
    defer { quantized.deallocate() }
    var perTensor: Float = 0
    if case .perTensor(let scale) = activation { perTensor = scale }
    let scales = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(1, m))
    defer { scales.deallocate() }
    scales[0] = perTensor
    try quantizeRowsInt8(x, rows: m, cols: k, mode: activation,
                         into: UnsafeMutableBufferPointer(rebasing: quantized[0..<(m * k)]),
                         scales: scales, threads: threads)
    let scaleCount = activation == .perToken ? m : 1
    try gemmInt8(a: UnsafeBufferPointer(rebasing: quantized[0..<(m * k)]), m: m,
                 aScales: UnsafeBufferPointer(rebasing: scales[0..<max(1, scaleCount)]),
                 b: weights, out: out, bias: bias, threads: threads)
}

/// `minSecondsPerThread` of int8 work at ≈ 400 GOPS.
let int8MinOperationsPerThread = 4.0e11 * minSecondsPerThread

/// Output of the threaded int8 core.
enum Int8Output {
    case float(UnsafeMutablePointer<Float>?)
    case int32(UnsafeMutablePointer<Int32>?)
}

/// The threaded core: no argument checks; pointers may be nil only where the matching
/// dimension is zero (scales are required for `.float`).
func gemmInt8Unchecked(m: Int, n: Int, k: Int, a: UnsafePointer<Int8>?,
                       packed: UnsafePointer<UInt8>?, out: Int8Output,
                       aScales: UnsafePointer<Float>?, aPerRow: Bool,
                       bScales: UnsafePointer<Float>?, bPerColumn: Bool,
                       bias: UnsafePointer<Float>?, threads: Int, status: KernelStatus,
                       minStreamedBytes: Double = minStreamedBytesPerThread) {
    if m == 0 || n == 0 { return }
    let panels = (n + Int(SQ_PANEL_COLS) - 1) / Int(SQ_PANEL_COLS)
    let partition = GemmPartition(rows: m, panels: panels,
                                  operations: 2.0 * Double(m) * Double(n) * Double(k),
                                  minOperationsPerThread: int8MinOperationsPerThread,
                                  threads: threads, weightBytes: k * n,
                                  streamedBytes: k * n, minStreamedBytes: minStreamedBytes)
    let args = UncheckedSendable((a: a, packed: packed, out: out, aScales: aScales,
                                  bScales: bScales, bias: bias))
    partition.run { piece in
        let p = args.value
        let range = partition.range(piece)
        if range.isEmpty { return }
        // Rows split: offset a, out and per-row scales; panels split: pass the range.
        let (row0, rows, panel0, panel1) = partition.axis == .rows
            ? (range.lowerBound, range.count, 0, panels)
            : (0, m, range.lowerBound, range.upperBound)
        let aRows = p.a.map { $0 + row0 * k }
        switch p.out {
        case .int32(let base):
            status.record(sq_s8_gemm_packed_s32(rows, n, k, aRows, k, p.packed, panel0, panel1,
                                                base.map { $0 + row0 * n }, n))
        case .float(let base):
            var epilogue = sq_s8_epilogue(
                scale_a: aPerRow ? p.aScales.map { $0 + row0 } : p.aScales,
                scale_a_per_row: aPerRow ? 1 : 0, scale_b: p.bScales,
                scale_b_per_col: bPerColumn ? 1 : 0, bias: p.bias)
            status.record(sq_s8_gemm_packed_f32(rows, n, k, aRows, k, p.packed, panel0, panel1,
                                                base.map { $0 + row0 * n }, n, &epilogue))
        }
    }
}
