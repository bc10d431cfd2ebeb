// Helpers of the kernel tests: a seeded generator, ISA iteration and thin wrappers over
// the C API that own their buffers.
import SQIR
import SQKernels
import Testing

/// The root of every kernel suite. Serialized (recursively) because tests force the
/// process-wide ISA path.
@Suite(.serialized)
struct KernelTests {}


/// Every ISA path this CPU runs (scalar first).
let supportedISAs: [sq_isa] = [SQ_ISA_SCALAR, SQ_ISA_AVX2, SQ_ISA_AVX512]
    .filter { $0.rawValue <= sq_isa_detected().rawValue }

/// Run `body` once per supported ISA with that path forced, then restore the best one.
func forEachISA(_ body: (sq_isa) throws -> Void) rethrows {
    defer { _ = sq_force_isa(sq_isa_detected()) }
    for isa in supportedISAs {
        #expect(sq_force_isa(isa) == 0)
        try body(isa)
    }
}

func isaName(_ isa: sq_isa) -> String { String(cString: sq_isa_name(isa)) }

let panelColumns = Int(SQ_PANEL_COLS)
func panelCount(_ n: Int) -> Int { (n + panelColumns - 1) / panelColumns }

// MARK: fp32

/// Pack B ([k, n], or [n, k] if transposed) into a fresh array.
func packF32(_ b: [Float], k: Int, n: Int, transposed: Bool) -> [Float] {
    var packed = [Float](repeating: .nan, count: max(1, sq_f32_packed_size(k, n)))
    b.withUnsafeBufferPointer { src in
        packed.withUnsafeMutableBufferPointer { dst in
            sq_f32_pack_b(src.baseAddress, transposed ? k : n, transposed ? 1 : 0, k, n,
                          dst.baseAddress)
        }
    }
    return packed
}

/// C rows [rowBegin, rowEnd) x panels [panelBegin, panelEnd) with the C API, in place.
func gemmF32(_ c: inout [Float], a: [Float], packed: [Float], m: Int, n: Int, k: Int,
             rows: Range<Int>? = nil, panels: Range<Int>? = nil, bias: [Float]? = nil,
             accumulate: Bool = false) {
    let rows = rows ?? 0..<m
    let panels = panels ?? 0..<panelCount(n)
    let status = a.withUnsafeBufferPointer { a in
        packed.withUnsafeBufferPointer { packed in
            c.withUnsafeMutableBufferPointer { c in
                withOptionalBuffer(bias) { bias in
                    sq_f32_gemm_packed(rows.count, n, k, a.baseAddress.map { $0 + rows.lowerBound * k }, k,
                                       packed.baseAddress, panels.lowerBound, panels.upperBound,
                                       c.baseAddress.map { $0 + rows.lowerBound * n }, n, bias,
                                       accumulate ? 1 : 0)
                }
            }
        }
    }
    #expect(status == 0)
}

func withOptionalBuffer<T, R>(_ array: [T]?, _ body: (UnsafePointer<T>?) -> R) -> R {
    guard let array else { return body(nil) }
    return array.withUnsafeBufferPointer { body($0.baseAddress) }
}

// MARK: int8

func packS8(_ b: [Int8], k: Int, n: Int, transposed: Bool) -> [UInt8] {
    // Int32 storage keeps the 4-byte alignment the correction terms need.
    let words = (sq_s8_packed_size(k, n) + 3) / 4
    var storage = [Int32](repeating: 0x5A5A_5A5A, count: max(1, words))
    b.withUnsafeBufferPointer { src in
        storage.withUnsafeMutableBytes { dst in
            sq_s8_pack_b(src.baseAddress, transposed ? k : n, transposed ? 1 : 0, k, n,
                         dst.baseAddress?.assumingMemoryBound(to: UInt8.self))
        }
    }
    return storage.withUnsafeBytes { Array($0) }
}

/// Runs `body` with the packed bytes at a 4-byte aligned address.
func withPacked<R>(_ packed: [UInt8], _ body: (UnsafePointer<UInt8>?) -> R) -> R {
    let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, packed.count), alignment: 64)
    defer { raw.deallocate() }
    raw.copyBytes(from: packed)
    return body(UnsafePointer(raw.baseAddress?.assumingMemoryBound(to: UInt8.self)))
}

func gemmS8Int32(a: [Int8], packed: [UInt8], m: Int, n: Int, k: Int,
                 rows: Range<Int>? = nil, panels: Range<Int>? = nil,
                 into out: inout [Int32]) {
    let rows = rows ?? 0..<m
    let panels = panels ?? 0..<panelCount(n)
    let status = a.withUnsafeBufferPointer { a in
        withPacked(packed) { packed in
            out.withUnsafeMutableBufferPointer { out in
                sq_s8_gemm_packed_s32(rows.count, n, k, a.baseAddress.map { $0 + rows.lowerBound * k }, k,
                                      packed, panels.lowerBound, panels.upperBound,
                                      out.baseAddress.map { $0 + rows.lowerBound * n }, n)
            }
        }
    }
    #expect(status == 0)
}

func gemmS8Float(a: [Int8], packed: [UInt8], m: Int, n: Int, k: Int,
                 scaleA: [Float], scaleB: [Float], bias: [Float]?,
                 rows: Range<Int>? = nil, panels: Range<Int>? = nil,
                 into out: inout [Float]) {
    let rows = rows ?? 0..<m
    let panels = panels ?? 0..<panelCount(n)
    let perRow = scaleA.count == m && m > 1
    let status = a.withUnsafeBufferPointer { a in
        withPacked(packed) { packed in
            out.withUnsafeMutableBufferPointer { out in
                scaleA.withUnsafeBufferPointer { sa in
                    scaleB.withUnsafeBufferPointer { sb in
                        withOptionalBuffer(bias) { bias in
                            var epilogue = sq_s8_epilogue(
                                scale_a: sa.baseAddress.map { $0 + (perRow ? rows.lowerBound : 0) },
                                scale_a_per_row: perRow ? 1 : 0, scale_b: sb.baseAddress,
                                scale_b_per_col: scaleB.count == n && n > 1 ? 1 : 0, bias: bias)
                            return sq_s8_gemm_packed_f32(rows.count, n, k,
                                                  a.baseAddress.map { $0 + rows.lowerBound * k }, k,
                                                  packed, panels.lowerBound, panels.upperBound,
                                                  out.baseAddress.map { $0 + rows.lowerBound * n }, n,
                                                  &epilogue)
                        }
                    }
                }
            }
        }
    }
    #expect(status == 0)
}

/// The exact product in Int64 (then checked to fit Int32).
func referenceS8(a: [Int8], b: [Int8], m: Int, n: Int, k: Int) -> [Int32] {
    var out = [Int32](repeating: 0, count: m * n)
    for i in 0..<m {
        for j in 0..<n {
            var sum: Int64 = 0
            for kk in 0..<k { sum += Int64(a[i * k + kk]) * Int64(b[kk * n + j]) }
            out[i * n + j] = Int32(sum)
        }
    }
    return out
}

func transpose<T>(_ x: [T], rows: Int, cols: Int) -> [T] {
    guard let first = x.first else { return x }
    var out = [T](repeating: first, count: rows * cols)
    for r in 0..<rows { for c in 0..<cols { out[c * rows + r] = x[r * cols + c] } }
    return out
}
