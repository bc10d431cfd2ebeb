import SQIR

/// The one place the interpreter reaches the fp32 GEMM kernels (Sources/SQRuntime/Kernels,
/// C micro-kernels in SQKernels). MatMul and Gemm only call these three functions.

/// A constant B packed once at plan time (`transposed`: the values are Bᵀ, `[n, k]`).
func packWeights(_ values: UnsafeBufferPointer<Float>, k: Int, n: Int, transposed: Bool) throws -> PackedFloat32Weights {
    try PackedFloat32Weights(k: k, n: n, values: values, transposed: transposed)
}

/// out[m, n] = a[m, k] · B (+ bias) with a packed B.
func gemm(_ a: UnsafeBufferPointer<Float>, m: Int, packed: PackedFloat32Weights,
          out: UnsafeMutableBufferPointer<Float>, bias: UnsafeBufferPointer<Float>? = nil) throws {
    try gemmF32(a: a, m: m, b: packed, out: out, bias: bias)
}

/// out[m, n] = a[m, k] · B for a B known only at run time (`[k, n]`, or `[n, k]` when
/// `transposeB`), e.g. attention's Q·Kᵀ and P·V.
func gemm(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>, m: Int, k: Int, n: Int,
          transposeB: Bool = false, out: UnsafeMutableBufferPointer<Float>,
          bias: UnsafeBufferPointer<Float>? = nil) throws {
    try gemmF32(a: a, b: b, m: m, k: k, n: n, transposeB: transposeB, out: out, bias: bias)
}

/// `batch` stacked products a[i] · b[i] over contiguous operands.
func batchedGemm(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>, batch: Int,
                 m: Int, k: Int, n: Int, out: UnsafeMutableBufferPointer<Float>) throws {
    try batchedGemmF32(a: a, b: b, batch: batch, m: m, k: k, n: n, out: out)
}
