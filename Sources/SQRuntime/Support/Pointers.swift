import SQIR

/// Base pointer of a buffer (never nil for tensor storage, which is always allocated).
@inline(__always)
func base<T>(_ buffer: UnsafeBufferPointer<T>) throws -> UnsafePointer<T> {
    guard let p = buffer.baseAddress else { throw OpError("internal: tensor without storage") }
    return p
}

@inline(__always)
func base<T>(_ buffer: UnsafeMutableBufferPointer<T>) throws -> UnsafeMutablePointer<T> {
    guard let p = buffer.baseAddress else { throw OpError("internal: tensor without storage") }
    return p
}

/// out = f(a, b) with broadcasting; `outType`/`dtype` say how the result is stored.
@inline(__always)
func mapBinary<A: TensorElement, B: TensorElement, R: TensorElement>(
    _ a: Tensor, _ b: Tensor, _ ta: A.Type, _ tb: B.Type, to tr: R.Type, dtype: DType,
    _ pool: BufferPool, _ f: (A, B) -> R
) throws -> Tensor {
    let it = try BroadcastIteration([a.shape, b.shape])
    return try a.withElements(as: A.self) { ea in
        try b.withElements(as: B.self) { eb in
            try pool.make(R.self, dtype: dtype, shape: it.outShape) { out in
                broadcastBinary(it, try base(ea), try base(eb), try base(out), f)
            }
        }
    }
}

/// out = f(x) elementwise.
@inline(__always)
func mapUnary<A: TensorElement, R: TensorElement>(
    _ x: Tensor, _ ta: A.Type, to tr: R.Type, dtype: DType, _ pool: BufferPool, _ f: (A) -> R
) throws -> Tensor {
    try x.withElements(as: A.self) { src in
        try pool.make(R.self, dtype: dtype, shape: x.shape) { out in
            let p = try base(src), o = try base(out)
            for i in 0..<src.count { o[i] = f(p[i]) }
        }
    }
}
