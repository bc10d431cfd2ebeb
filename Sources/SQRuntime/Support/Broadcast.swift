import SQIR

/// numpy/ONNX multidirectional broadcasting of shapes.
func broadcastShape(_ shapes: [[Int]]) throws -> [Int] {
    let rank = shapes.map(\.count).max() ?? 0
    var out = [Int](repeating: 1, count: rank)
    for shape in shapes {
        let offset = rank - shape.count
        for (i, d) in shape.enumerated() {
            let j = i + offset
            if out[j] == d || d == 1 { continue }
            if out[j] == 1 { out[j] = d; continue }
            throw OpError("shapes \(shapes.map { "\($0)" }.joined(separator: " and ")) cannot be broadcast together")
        }
    }
    return out
}

/// Row-major element strides of `shape`.
func contiguousStrides(_ shape: [Int]) -> [Int] {
    var strides = [Int](repeating: 1, count: shape.count)
    var s = 1
    for i in stride(from: shape.count - 1, through: 0, by: -1) {
        strides[i] = s
        s &*= shape[i]
    }
    return strides
}

/// How an elementwise op with broadcasting walks its operands: the output is cut into
/// rows of `inner` elements; in a row each operand advances by 0 or 1 per element.
/// Adjacent dims that are contiguous in every operand are merged first, so same-shape
/// and scalar operands become one long row (no per-element index math).
struct BroadcastIteration {
    let outShape: [Int]
    let count: Int
    let inner: Int
    /// Per operand: 0 (broadcast along the row) or 1.
    let innerStrides: [Int]
    let outerDims: [Int]
    /// Per operand, per outer dim: element stride in that operand.
    let outerStrides: [[Int]]

    init(_ shapes: [[Int]], outShape given: [Int]? = nil) throws {
        let out = try given ?? broadcastShape(shapes)
        outShape = out
        count = checkedElementCount(out) ?? 0
        let rank = out.count
        var dims: [Int] = []
        var strides = [[Int]](repeating: [], count: shapes.count)
        var operandStrides: [[Int]] = []
        for shape in shapes {
            guard shape.count <= rank else { throw OpError("internal: operand rank exceeds output rank") }
            let padded = [Int](repeating: 1, count: rank - shape.count) + shape
            let cs = contiguousStrides(padded)
            var s = [Int](repeating: 0, count: rank)
            for i in 0..<rank {
                if padded[i] == out[i] { s[i] = cs[i] } else if padded[i] == 1 { s[i] = 0 } else {
                    throw OpError("shape \(shape) cannot be broadcast to \(out)")
                }
            }
            operandStrides.append(s)
        }
        for i in 0..<rank where out[i] != 1 {
            if let last = dims.last, operandStrides.indices.allSatisfy({ k in
                strides[k].last == operandStrides[k][i] &* out[i] || (strides[k].last == 0 && operandStrides[k][i] == 0)
            }) {
                dims[dims.count - 1] = last &* out[i]
                for k in operandStrides.indices { strides[k][strides[k].count - 1] = operandStrides[k][i] }
                continue
            }
            dims.append(out[i])
            for k in operandStrides.indices { strides[k].append(operandStrides[k][i]) }
        }
        if let last = dims.popLast() {
            inner = last
            innerStrides = strides.map { $0.last ?? 0 }
            outerStrides = strides.map { Array($0.dropLast()) }
        } else {
            inner = 1
            innerStrides = [Int](repeating: 0, count: shapes.count)
            outerStrides = [[Int]](repeating: [], count: shapes.count)
        }
        outerDims = dims
    }

    var rowCount: Int { inner == 0 ? 0 : count / inner }

    /// Calls `body(outOffset, operandOffsets)` for each row; the offsets array is reused.
    func forEachRow(_ body: (Int, [Int]) throws -> Void) rethrows {
        guard count > 0 else { return }
        var offsets = [Int](repeating: 0, count: innerStrides.count)
        if outerDims.isEmpty {
            try body(0, offsets)
            return
        }
        var index = [Int](repeating: 0, count: outerDims.count)
        var outOffset = 0
        let last = outerDims.count - 1
        while true {
            try body(outOffset, offsets)
            outOffset += inner
            var d = last
            while d >= 0 {
                index[d] += 1
                for k in offsets.indices { offsets[k] += outerStrides[k][d] }
                if index[d] < outerDims[d] { break }
                for k in offsets.indices { offsets[k] -= outerStrides[k][d] * outerDims[d] }
                index[d] = 0
                d -= 1
            }
            if d < 0 { return }
        }
    }
}

/// out = f(a, b) elementwise with broadcasting, rows specialised by operand strides so
/// the inner loops are plain contiguous loops.
@inline(__always)
func broadcastBinary<A, B, R>(
    _ it: BroadcastIteration, _ a: UnsafePointer<A>, _ b: UnsafePointer<B>,
    _ out: UnsafeMutablePointer<R>, _ f: (A, B) -> R
) {
    let n = it.inner
    let sa = it.innerStrides[0], sb = it.innerStrides[1]
    it.forEachRow { o, offs in
        let pa = a + offs[0], pb = b + offs[1], po = out + o
        if sa == 1 && sb == 1 {
            for i in 0..<n { po[i] = f(pa[i], pb[i]) }
        } else if sa == 1 {
            let bv = pb[0]
            for i in 0..<n { po[i] = f(pa[i], bv) }
        } else if sb == 1 {
            let av = pa[0]
            for i in 0..<n { po[i] = f(av, pb[i]) }
        } else {
            let v = f(pa[0], pb[0])
            for i in 0..<n { po[i] = v }
        }
    }
}

/// out = f(a, b, c) elementwise with broadcasting (Where, Clip with tensor bounds).
@inline(__always)
func broadcastTernary<A, B, C, R>(
    _ it: BroadcastIteration, _ a: UnsafePointer<A>, _ b: UnsafePointer<B>, _ c: UnsafePointer<C>,
    _ out: UnsafeMutablePointer<R>, _ f: (A, B, C) -> R
) {
    let n = it.inner
    let sa = it.innerStrides[0], sb = it.innerStrides[1], sc = it.innerStrides[2]
    it.forEachRow { o, offs in
        let pa = a + offs[0], pb = b + offs[1], pc = c + offs[2], po = out + o
        for i in 0..<n { po[i] = f(pa[i * sa], pb[i * sb], pc[i * sc]) }
    }
}

/// Copies `src` broadcast to `it.outShape` (Expand, and operands of fused kernels).
@inline(__always)
func broadcastCopy<T>(_ it: BroadcastIteration, _ src: UnsafePointer<T>, _ out: UnsafeMutablePointer<T>) {
    let n = it.inner
    let s = it.innerStrides[0]
    it.forEachRow { o, offs in
        let p = src + offs[0], po = out + o
        if s == 1 { po.update(from: p, count: n) } else { po.update(repeating: p[0], count: n) }
    }
}
