import SQIR

/// onnxruntime contrib ops (domain `com.microsoft`) that optimized exports carry, built from
/// the interpreter's own kernels where they are a composition:
///
/// - `SkipLayerNormalization(input, skip, gamma, beta?, bias?)` and
///   `SkipSimplifiedLayerNormalization(input, skip, gamma, bias?)`: `sum = input + skip (+ bias)`,
///   `output = norm(sum) · γ (+ β)` over the last axis; outputs `output, mean, inv_std_var,
///   input_skip_bias_sum` (the RMS form has no mean: that output is never produced);
/// - `FastGelu(X, bias?)`: tanh-approximated GELU of `X (+ bias)`;
/// - `BiasGelu(A, B)`: exact (erf) GELU of `A + B`;
/// - `RotaryEmbedding(input, position_ids, cos_cache, sin_cache)` (and the opset-23 default
///   domain form `RotaryEmbedding(X, cos_cache, sin_cache, position_ids?)`): see
///   `RotaryEmbeddingKernel`.
struct SkipNormalizationKernel: OpKernel {
    let epsilon: Float
    let rms: Bool

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        try computingHalfInFloat(inputs, pool) { try normalize($0, pool) }
    }

    private func normalize(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        let input = try required(inputs, 0), skip = try required(inputs, 1, "skip input")
        let gamma = try required(inputs, 2, "gamma input")
        let beta: Tensor? = rms ? nil : (inputs.count > 3 ? inputs[3] : nil)
        let biasIndex = rms ? 3 : 4
        let bias: Tensor? = inputs.count > biasIndex ? inputs[biasIndex] : nil
        guard input.rank >= 1, let hidden = input.shape.last else { throw OpError("input must have rank 1 or more") }
        guard skip.count == input.count || skip.shape.last == hidden else {
            throw OpError("skip shape \(skip.shape) does not match input shape \(input.shape)")
        }
        var sum = try arithmetic(.add, input, skip, pool)
        if let bias { sum = try arithmetic(.add, sum, bias, pool) }
        if sum.shape != input.shape { throw OpError("skip shape \(skip.shape) does not broadcast to input shape \(input.shape)") }
        let norm = NormalizationKernel(axis: -1, epsilon: epsilon, rms: rms)
        let results = try norm.run([sum, gamma, beta], pool)
        // NormalizationKernel gives [y, mean, invStd] (LayerNorm) or [y, invStd] (RMS).
        if rms { return [results[0], nil, results.count > 1 ? results[1] : nil, sum] }
        return [results[0], results.count > 1 ? results[1] : nil, results.count > 2 ? results[2] : nil, sum]
    }
}

/// GELU of `x + bias` (bias optional): `FastGelu` (tanh) and `BiasGelu` (erf).
struct BiasGeluKernel: OpKernel {
    let tanhApproximation: Bool
    let biasRequired: Bool

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        try computingHalfInFloat(inputs, pool) { ins in
            let x = try required(ins, 0)
            let bias: Tensor? = ins.count > 1 ? ins[1] : nil
            if biasRequired && bias == nil { throw OpError("missing required bias input 1") }
            let sum = try bias.map { try arithmetic(.add, x, $0, pool) } ?? x
            guard sum.shape == x.shape else { throw OpError("bias shape \(bias?.shape ?? []) does not broadcast to input shape \(x.shape)") }
            return try UnaryKernel(op: .gelu(tanhApproximation: tanhApproximation)).run([sum], pool)
        }
    }
}

/// Rotary position embedding on `[B, S, N·H]` or `[B, N, S, H]` inputs.
///
/// For position `p` of a token and `i < d/2` (`d` = `rotary_embedding_dim`, default the head
/// size), with `c = cos_cache[p, i]`, `s = sin_cache[p, i]` and the pair `(x1, x2)` =
/// `(x[i], x[i + d/2])` (rotate-half) or `(x[2i], x[2i+1])` (`interleaved=1`):
/// `x1' = x1·c − x2·s`, `x2' = x2·c + x1·s`. Channels past `d` are copied.
/// Positions come from `position_ids [B, S]`, or from one offset `[1]` (`p = offset + s`);
/// in the default-domain form without position_ids, the caches are `[B, S, d/2]`.
struct RotaryEmbeddingKernel: OpKernel {
    let interleaved: Bool
    let numHeads: Int
    let rotaryDim: Int
    /// Input order: contrib `(input, position_ids, cos, sin)` or default `(X, cos, sin, position_ids?)`.
    let contribOrder: Bool

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        try computingHalfInFloat(inputs, pool) { ins in
            let x = try required(ins, 0)
            let positions: Tensor?, cos: Tensor, sin: Tensor
            if contribOrder {
                positions = try required(ins, 1, "position_ids input")
                cos = try required(ins, 2, "cos_cache input")
                sin = try required(ins, 3, "sin_cache input")
            } else {
                cos = try required(ins, 1, "cos_cache input")
                sin = try required(ins, 2, "sin_cache input")
                positions = ins.count > 3 ? ins[3] : nil
            }
            guard x.dtype == .float, cos.dtype == .float, sin.dtype == .float else {
                throw OpError("RotaryEmbedding runs on float tensors, got \(x.dtype), \(cos.dtype), \(sin.dtype)")
            }
            return [try rotate(x, positions: positions, cos: cos, sin: sin, pool)]
        }
    }

    private func rotate(_ x: Tensor, positions: Tensor?, cos: Tensor, sin: Tensor, _ pool: BufferPool) throws -> Tensor {
        guard cos.shape == sin.shape, let halfCache = cos.shape.last, halfCache > 0 else {
            throw OpError("cos_cache \(cos.shape) and sin_cache \(sin.shape) must have the same non-empty shape")
        }
        // Layout: [B, S, N, H] (3-D input, heads packed in the last axis) or [B, N, S, H].
        let batch: Int, seq: Int, heads: Int, headSize: Int, packed: Bool
        switch x.rank {
        case 3:
            let n = numHeads > 0 ? numHeads : Swift.max(1, x.shape[2] / Swift.max(1, rotaryDim > 0 ? rotaryDim : 2 * halfCache))
            guard x.shape[2] % n == 0 else { throw OpError("hidden size \(x.shape[2]) is not a multiple of num_heads \(n)") }
            (batch, seq, heads, headSize, packed) = (x.shape[0], x.shape[1], n, x.shape[2] / n, true)
        case 4:
            (batch, seq, heads, headSize, packed) = (x.shape[0], x.shape[2], x.shape[1], x.shape[3], false)
        default:
            throw OpError("input must be 3-D [B, S, hidden] or 4-D [B, N, S, H], got \(x.shape)")
        }
        let dim = rotaryDim > 0 ? rotaryDim : headSize
        guard dim % 2 == 0, dim <= headSize, dim / 2 <= halfCache else {
            throw OpError("rotary dimension \(dim) does not fit head size \(headSize) and cache width \(halfCache)")
        }
        let half = dim / 2
        // Row of the caches for token (b, s).
        let cacheRow: (Int, Int) throws -> Int
        let maxRows = cos.count / halfCache
        if let positions {
            let ids = try positions.intValues("position_ids")
            if ids.count == 1 {
                cacheRow = { _, s in ids[0] + s }
            } else {
                guard ids.count == batch * seq else {
                    throw OpError("position_ids has \(ids.count) elements, expected \(batch) x \(seq)")
                }
                cacheRow = { b, s in ids[b * seq + s] }
            }
        } else {
            guard cos.count == batch * seq * halfCache else {
                throw OpError("without position_ids the caches must be [B, S, d/2] = [\(batch), \(seq), \(half)], got \(cos.shape)")
            }
            cacheRow = { b, s in b * seq + s }
        }
        return try x.withElements(as: Float.self) { src in
            try cos.withElements(as: Float.self) { cosBuffer in
                try sin.withElements(as: Float.self) { sinBuffer in
                    try pool.make(Float.self, shape: x.shape) { out in
                        guard x.count > 0 else { return }
                        let s0 = try base(src), o = try base(out), c = try base(cosBuffer), sn = try base(sinBuffer)
                        for b in 0..<batch {
                            for t in 0..<seq {
                                let row = try cacheRow(b, t)
                                guard row >= 0 && row < maxRows else {
                                    throw OpError("position \(row) is outside the cache of \(maxRows) positions")
                                }
                                let cr = c + row * halfCache, sr = sn + row * halfCache
                                for h in 0..<heads {
                                    let offset = packed ? ((b * seq + t) * heads + h) * headSize
                                                        : ((b * heads + h) * seq + t) * headSize
                                    let p = s0 + offset, q = o + offset
                                    for i in 0..<half {
                                        let (i1, i2) = interleaved ? (2 * i, 2 * i + 1) : (i, i + half)
                                        let x1 = p[i1], x2 = p[i2]
                                        q[i1] = x1 * cr[i] - x2 * sr[i]
                                        q[i2] = x2 * cr[i] + x1 * sr[i]
                                    }
                                    for i in dim..<headSize { q[i] = p[i] }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `MatMulNBits(A, B, scales, zero_points?, g_idx?, bias?)`: A[..., K] times a block-quantized
/// weight, `bits` (2...8) per element packed low bits first, `block_size` elements of one
/// column n per block b sharing `scales[n, b]` and a zero point (default 2^(bits−1); packed
/// uint8 like B, or float). The weight is dequantized to float32 and packed once at plan
/// time; sqopt runs the op but never quantizes or rewrites it.
struct MatMulNBitsKernel: OpKernel {
    let packed: PackedFloat32Weights
    var preparedInputs: Set<Int> { [1, 2, 3] }

    static func make(_ node: NodeLowering) throws -> any OpKernel {
        let k = try node.int("K", default: 0), n = try node.int("N", default: 0)
        let bits = try node.int("bits", default: 4), blockSize = try node.int("block_size", default: 0)
        guard k > 0, n > 0, (2...8).contains(bits), blockSize >= 16, blockSize & (blockSize - 1) == 0 else {
            throw OpError("MatMulNBits needs K, N > 0, bits in 2...8 and block_size a power of 2 >= 16 (K \(k), N \(n), bits \(bits), block_size \(blockSize))")
        }
        if node.hasInput(4) { throw OpError("MatMulNBits with g_idx is not supported") }
        guard let b = node.constantInput(1), b.dtype == .uint8, let scales = node.constantInput(2) else {
            throw OpError("MatMulNBits needs constant uint8 B and constant scales")
        }
        let blocks = (k + blockSize - 1) / blockSize, blobBytes = blockSize * bits / 8
        guard b.count == n * blocks * blobBytes else {
            throw OpError("B has \(b.count) bytes, expected N \(n) x \(blocks) blocks x \(blobBytes)")
        }
        let scaleValues = try widenedToFloatIfHalf(scales, BufferPool(maxTensorBytes: .max)).doubleValues().map(Float.init)
        guard scaleValues.count == n * blocks else { throw OpError("scales has \(scaleValues.count) elements, expected \(n * blocks)") }
        let mask = (1 << bits) - 1
        let zeroPoint: (Int, Int) -> Float
        if let z = node.constantInput(3) {
            if z.dtype == .uint8 {
                let bytes = z.doubleValues().map { Int($0) }, rowBytes = (blocks * bits + 7) / 8
                guard bytes.count == n * rowBytes else { throw OpError("zero_points has \(bytes.count) bytes, expected \(n * rowBytes)") }
                zeroPoint = { col, block in
                    Float((bytes[col * rowBytes + block * bits / 8] >> ((block * bits) % 8)) & mask)
                }
            } else {
                let values = try widenedToFloatIfHalf(z, BufferPool(maxTensorBytes: .max)).doubleValues().map(Float.init)
                guard values.count == n * blocks else { throw OpError("zero_points has \(values.count) elements, expected \(n * blocks)") }
                zeroPoint = { col, block in values[col * blocks + block] }
            }
        } else if node.hasInput(3) {
            throw OpError("MatMulNBits zero_points must be a constant")
        } else {
            let middle = Float(1 << (bits - 1))
            zeroPoint = { _, _ in middle }
        }
        let packedBytes = b.doubleValues().map { Int($0) }
        var weight = [Float](repeating: 0, count: k * n)  // [K, N] row-major
        for col in 0..<n {
            for block in 0..<blocks {
                let scale = scaleValues[col * blocks + block], zero = zeroPoint(col, block)
                let blob = (col * blocks + block) * blobBytes
                for i in 0..<blockSize {
                    let row = block * blockSize + i
                    guard row < k else { break }
                    let q = (packedBytes[blob + i * bits / 8] >> ((i * bits) % 8)) & mask
                    weight[row * n + col] = (Float(q) - zero) * scale
                }
            }
        }
        let packed = try weight.withUnsafeBufferPointer { try packWeights($0, k: k, n: n, transposed: false) }
        return MatMulNBitsKernel(packed: packed)
    }

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        try computingHalfInFloat(inputs, widen: [0, 5], pool) { ins in
            var y = try matmul(try required(ins, 0), packed: packed, pool)
            if ins.count > 5, let bias = ins[5] { y = try arithmetic(.add, y, bias, pool) }
            return [y]
        }
    }
}
