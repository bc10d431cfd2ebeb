import SQIR

/// Storage for kernel outputs during one run: buffers released after a value's last use
/// come back here and are handed out again for an output of the same byte size.
///
/// Recycled buffers hold stale bytes: kernels overwrite every element of what they get
/// (`makeZeroed` clears first). Not thread-safe: one pool per run.
final class BufferPool {
    /// Refuse single tensors larger than this (a shape computed from user data must not
    /// exhaust memory or crash the allocator).
    let maxTensorBytes: Int
    private var free: [Int: [TensorStorage]] = [:]
    private(set) var reuseCount = 0
    private(set) var allocationCount = 0

    init(maxTensorBytes: Int, reusing buffers: [Int: [TensorStorage]] = [:]) {
        self.maxTensorBytes = maxTensorBytes
        self.free = buffers
    }

    /// Hands the free buffers over (to keep them for the next run).
    func takeFreeBuffers() -> [Int: [TensorStorage]] {
        defer { free = [:] }
        return free
    }

    func storage(byteCount: Int) throws -> TensorStorage {
        // Pops in place: `if var list = free[n]` copied the list (a second reference, so
        // `popLast` reallocated it) on every reuse.
        if let s = free[byteCount]?.popLast() {
            reuseCount += 1
            return s
        }
        guard byteCount <= maxTensorBytes else {
            throw OpError("a tensor of \(byteCount) bytes exceeds the limit of \(maxTensorBytes) bytes")
        }
        allocationCount += 1
        // Not zero-filled: kernels overwrite every element (`makeZeroed` clears).
        return TensorStorage(uninitializedByteCount: byteCount)
    }

    /// Takes back a buffer nobody else references (the caller checked uniqueness).
    func recycle(_ storage: TensorStorage) {
        guard !storage.isBorrowed, storage.byteCount > 0 else { return }
        free[storage.byteCount, default: []].append(storage)
    }

    /// A new tensor of `shape` whose elements `body` writes (all of them).
    /// `dtype` defaults to `T`'s; pass `.float16`/`.bfloat16` with UInt16 or `.bool` with UInt8.
    func make<T: TensorElement>(
        _ type: T.Type, dtype: DType = T.dtype, shape: [Int],
        _ body: (UnsafeMutableBufferPointer<T>) throws -> Void
    ) throws -> Tensor {
        guard MemoryLayout<T>.stride == dtype.byteSize else {
            throw OpError("internal: element type \(T.self) does not store \(dtype)")
        }
        guard let count = checkedElementCount(shape) else {
            throw OpError("invalid output shape \(shape)")
        }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: MemoryLayout<T>.stride)
        guard !overflow else { throw OpError("output shape \(shape) is too large") }
        let storage = try self.storage(byteCount: bytes)
        if let raw = storage.mutableBytes, bytes > 0 {
            try body(raw.bindMemory(to: T.self))
        }
        return try Tensor(dtype: dtype, shape: shape, storage: storage)
    }

    /// Like `make`, but the buffer starts zero-filled.
    func makeZeroed<T: TensorElement>(
        _ type: T.Type, dtype: DType = T.dtype, shape: [Int],
        _ body: (UnsafeMutableBufferPointer<T>) throws -> Void
    ) throws -> Tensor {
        try make(type, dtype: dtype, shape: shape) { out in
            if let base = UnsafeMutableRawPointer(out.baseAddress) {
                base.initializeMemory(as: UInt8.self, repeating: 0, count: out.count * MemoryLayout<T>.stride)
            }
            try body(out)
        }
    }

    /// A copy of `tensor`'s bytes under `shape` (same element count).
    func copy(_ tensor: Tensor, shape: [Int]? = nil) throws -> Tensor {
        let storage = try self.storage(byteCount: tensor.byteCount)
        if let dst = storage.mutableBytes, let d = dst.baseAddress, let s = tensor.storage.bytes.baseAddress, tensor.byteCount > 0 {
            d.copyMemory(from: s, byteCount: tensor.byteCount)
        }
        return try Tensor(dtype: tensor.dtype, shape: shape ?? tensor.shape, storage: storage)
    }
}
