import SQIR
import SQKernels

/// Softmax / LogSoftmax, LayerNormalization, RMSNormalization and onnxruntime's
/// SimplifiedLayerNormalization. Computed in float32 (float16 widened) or double.

struct SoftmaxKernel: OpKernel {
    let axis: Int
    /// Opset < 13: the input is coerced to 2-D at `axis` and normalised over all of [axis...].
    let flattenTail: Bool
    let logarithm: Bool

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        try computingHalfInFloat(inputs, pool) { ins in
            let x = try required(ins, 0)
            let a = try normalizedAxis(axis, rank: Swift.max(x.rank, 1))
            let outer = x.shape[..<Swift.min(a, x.rank)].reduce(1, *)
            let n = flattenTail ? x.shape[Swift.min(a, x.rank)...].reduce(1, *) : (x.rank == 0 ? 1 : x.shape[a])
            let inner = flattenTail || x.rank == 0 ? 1 : x.shape[(a + 1)...].reduce(1, *)
            if x.dtype == .float && inner == 1 && n > 0 {
                return [try floatSoftmaxRows(x, rows: outer, n: n, log: logarithm, pool)]
            }
            return [try SoftmaxComputation(x: x, outer: outer, n: n, inner: inner, log: logarithm, pool: pool).dispatch(x.dtype)]
        }
    }
}

private struct SoftmaxComputation: FloatComputation {
    let x: Tensor, outer: Int, n: Int, inner: Int, log: Bool, pool: BufferPool

    func run<T: RuntimeFloat>(_ type: T.Type) throws -> Tensor {
        try x.withElements(as: T.self) { src in
            try pool.make(T.self, dtype: x.dtype, shape: x.shape) { out in
                let s = try base(src), o = try base(out)
                for b in 0..<outer {
                    for i in 0..<inner {
                        let start = b * n * inner + i
                        var maxValue = -T.infinity
                        for k in 0..<n { maxValue = Swift.max(maxValue, s[start + k * inner]) }
                        if maxValue == -T.infinity { maxValue = 0 }
                        var sum: T = 0
                        for k in 0..<n {
                            let e = T.exponential(s[start + k * inner] - maxValue)
                            o[start + k * inner] = e
                            sum += e
                        }
                        if log {
                            let logSum = T.logarithm(sum)
                            for k in 0..<n { o[start + k * inner] = s[start + k * inner] - maxValue - logSum }
                        } else {
                            let r = 1 / sum
                            for k in 0..<n { o[start + k * inner] *= r }
                        }
                    }
                }
            }
        }
    }
}

/// LayerNormalization (with optional Mean and InvStdDev outputs) and the RMS variants
/// (RMSNormalization, SimplifiedLayerNormalization): normalise over dims [axis...].
struct NormalizationKernel: OpKernel {
    let axis: Int
    let epsilon: Float
    let rms: Bool

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        let original = try required(inputs, 0)
        let widen = { (t: Tensor?) throws -> Tensor? in
            guard let t else { return nil }
            return t.dtype.isHalfPrecision ? try widenedToFloat(t, pool) : t
        }
        let x = try widen(original) ?? original
        let a = try normalizedAxis(axis, rank: x.rank)
        let normShape = Array(x.shape[a...])
        let scale = try required(inputs, 1, "scale input")
        let bias = rms ? nil : (inputs.count > 2 ? inputs[2] : nil)
        let statsShape = Array(x.shape[..<a]) + [Int](repeating: 1, count: x.rank - a)
        let computation = NormalizationComputation(
            x: x, scale: try expanded(try widen(scale), to: normShape, pool),
            bias: try bias.map { try expanded(try widen($0), to: normShape, pool) },
            groups: x.shape[..<a].reduce(1, *), size: normShape.reduce(1, *),
            statsShape: statsShape, epsilon: epsilon, rms: rms, pool: pool)
        // float32 called directly so it is specialized here even without whole-module optimization.
        let results = x.dtype == .float ? try computation.run(Float.self) : try computation.dispatch(x.dtype)
        var y = results[0]
        if original.dtype.isHalfPrecision { y = try narrowedFromFloat(y, to: original.dtype, pool) }
        return [y] + results.dropFirst().map { Optional($0) }
    }
}

/// `t` broadcast to `shape` (a no-op when it already has that many elements in order).
private func expanded(_ t: Tensor?, to shape: [Int], _ pool: BufferPool) throws -> Tensor {
    guard let t else { throw OpError("missing scale") }
    if t.count == shape.reduce(1, *) && t.shape.drop(while: { $0 == 1 }).elementsEqual(shape.drop(while: { $0 == 1 })) {
        return t
    }
    let out = try broadcastShape([t.shape, shape])
    guard out == shape else { throw OpError("scale/bias shape \(t.shape) does not broadcast to \(shape)") }
    let padded = [Int](repeating: 1, count: shape.count - t.rank) + t.shape
    let strides = zip(contiguousStrides(padded), zip(padded, shape)).map { s, d in d.0 == d.1 ? s : 0 }
    return try stridedView(t, offset: 0, strides: strides, shape: shape, pool)
}

private struct NormalizationComputation: FloatComputation {
    let x: Tensor, scale: Tensor, bias: Tensor?
    let groups: Int, size: Int, statsShape: [Int]
    let epsilon: Float, rms: Bool, pool: BufferPool

    func run<T: RuntimeFloat>(_ type: T.Type) throws -> [Tensor] {
        guard scale.dtype == x.dtype, bias.map({ $0.dtype == x.dtype }) ?? true else {
            throw OpError("scale and bias must have the input's element type \(x.dtype)")
        }
        var means = [Float](repeating: 0, count: groups)
        var invStd = [Float](repeating: 0, count: groups)
        if T.self == Float.self, let y = try floatRows(&means, &invStd) {
            return rms ? [y, Tensor(shape: statsShape, values: invStd)]
                : [y, Tensor(shape: statsShape, values: means), Tensor(shape: statsShape, values: invStd)]
        }
        let y = try x.withElements(as: T.self) { src in
            try scale.withElements(as: T.self) { sc in
                try pool.make(T.self, dtype: x.dtype, shape: x.shape) { out in
                    let s = try base(src), g = try base(sc), o = try base(out)
                    let b: UnsafePointer<T>? = try bias?.withElements(as: T.self) { try base($0) }
                    for row in 0..<groups {
                        let p = s + row * size, q = o + row * size
                        var mean: Double = 0
                        if !rms {
                            for i in 0..<size { mean += Double(p[i]) }
                            mean /= Double(Swift.max(size, 1))
                        }
                        var variance: Double = 0
                        for i in 0..<size {
                            let d = Double(p[i]) - mean
                            variance += d * d
                        }
                        variance /= Double(Swift.max(size, 1))
                        let r = 1 / (variance + Double(epsilon)).squareRoot()
                        means[row] = Float(mean)
                        invStd[row] = Float(r)
                        let m = T(mean), rt = T(r)
                        if let b {
                            for i in 0..<size { q[i] = (p[i] - m) * rt * g[i] + b[i] }
                        } else {
                            for i in 0..<size { q[i] = (p[i] - m) * rt * g[i] }
                        }
                    }
                }
            }
        }
        let meanTensor = Tensor(shape: statsShape, values: means)
        let invStdTensor = Tensor(shape: statsShape, values: invStd)
        return rms ? [y, invStdTensor] : [y, meanTensor, invStdTensor]
    }

    /// float32 rows with the C row kernel (eight partial sums in double instead of one running
    /// sum); nil when scale or bias is not one row of `size` (`expanded` made them contiguous).
    private func floatRows(_ means: inout [Float], _ invStd: inout [Float]) throws -> Tensor? {
        guard scale.dtype == .float, scale.count == size, bias.map({ $0.dtype == .float && $0.count == size }) ?? true
        else { return nil }
        return try x.withElements(as: Float.self) { src in
            try scale.withElements(as: Float.self) { sc in
                try pool.make(Float.self, shape: x.shape) { out in
                    let s = try base(src), g = try base(sc), o = try base(out)
                    let b: UnsafePointer<Float>? = try bias?.withElements(as: Float.self) { try base($0) }
                    try means.withUnsafeMutableBufferPointer { mp in
                        try invStd.withUnsafeMutableBufferPointer { ip in
                            let mb = try base(mp), ib = try base(ip)
                            for row in 0..<groups {
                                sq_layer_norm_row_f32(size, s + row * size, epsilon, rms ? 1 : 0, g, b, o + row * size,
                                                      mb + row, ib + row)
                            }
                        }
                    }
                }
            }
        }
    }
}
