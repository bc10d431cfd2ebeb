import Foundation

/// Raw bytes of a tensor: owned (64-byte aligned heap memory) or borrowed from an owner that
/// keeps them alive (a memory-mapped external-data file, a decoded protobuf arena).
///
/// Storage is immutable once a `Tensor` holds it. Code that fills a fresh buffer (kernels,
/// the decoder) writes through `mutableBytes` before wrapping it in a `Tensor`.
public final class TensorStorage: @unchecked Sendable {
    public let byteCount: Int
    private let base: UnsafeMutableRawPointer
    private let ownsMemory: Bool
    /// Keeps borrowed bytes alive (e.g. an mmap region object). Nil for owned storage.
    public let owner: AnyObject?

    /// Fresh zero-filled, 64-byte aligned storage.
    public convenience init(byteCount: Int) {
        self.init(uninitializedByteCount: byteCount)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: max(byteCount, 1))
    }

    /// Fresh 64-byte aligned storage whose bytes are undefined until written: for buffers a
    /// kernel overwrites completely (zero-filling them first would touch every page twice).
    public init(uninitializedByteCount byteCount: Int) {
        self.byteCount = byteCount
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 1), alignment: 64)
        TensorStorage.adviseHugePages(raw, byteCount: byteCount)
        #if DEBUG
        // Debug builds (the tests) poison the bytes, so a kernel that relies on fresh
        // buffers being zero fails there instead of only on a reused buffer.
        raw.initializeMemory(as: UInt8.self, repeating: 0xFF, count: max(byteCount, 1))
        #endif
        self.base = raw
        self.ownsMemory = true
        self.owner = nil
    }

    /// With `SQOPT_HUGE_PAGES=1`, asks the kernel to back the 2 MiB-aligned interior of a
    /// large, not yet touched allocation with transparent huge pages (`madvise(MADV_HUGEPAGE)`;
    /// the machines run THP in `madvise` mode): a 100 MB weight then costs ≈ 50 page faults
    /// on first touch instead of ≈ 25 000. Off by default: with THP `defrag=madvise` such
    /// faults may compact memory synchronously, and on a machine short of free memory the
    /// fp32 SmolLM2 load measured 1.2 s instead of 0.6 s (2026-12-03, docs/performance.md).
    /// No-op for blocks under 4 MiB and where the call is unavailable.
    public static func adviseHugePages(_ pointer: UnsafeMutableRawPointer, byteCount: Int) {
        #if os(Linux)
        let huge = 2 << 20
        guard hugePagesEnabled, byteCount >= 2 * huge else { return }
        let start = (Int(bitPattern: pointer) + huge - 1) & ~(huge - 1)
        let end = (Int(bitPattern: pointer) + byteCount) & ~(huge - 1)
        if end > start, let aligned = UnsafeMutableRawPointer(bitPattern: start) {
            _ = madvise(aligned, end - start, 14)  // MADV_HUGEPAGE
        }
        #endif
    }

    /// `SQOPT_HUGE_PAGES=1` turns `adviseHugePages` on.
    static let hugePagesEnabled = ProcessInfo.processInfo.environment["SQOPT_HUGE_PAGES"] == "1"

    /// A copy of `bytes` in fresh aligned storage.
    public convenience init(copying bytes: UnsafeRawBufferPointer) {
        self.init(uninitializedByteCount: bytes.count)
        if let src = bytes.baseAddress, bytes.count > 0 {
            base.copyMemory(from: src, byteCount: bytes.count)
        }
    }

    /// Borrowed bytes kept alive by `owner` (zero copy). The caller guarantees that the
    /// memory stays valid and unchanged while `owner` lives.
    public init(borrowing pointer: UnsafeRawPointer, byteCount: Int, owner: AnyObject) {
        self.byteCount = byteCount
        self.base = UnsafeMutableRawPointer(mutating: pointer)
        self.ownsMemory = false
        self.owner = owner
    }

    deinit {
        if ownsMemory { base.deallocate() }
    }

    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: byteCount) }

    /// Writable view, for filling storage that no tensor shares yet. Borrowed storage is read-only.
    public var mutableBytes: UnsafeMutableRawBufferPointer? {
        ownsMemory ? UnsafeMutableRawBufferPointer(start: base, count: byteCount) : nil
    }

    public var isBorrowed: Bool { !ownsMemory }
}

/// Types that can be the element of a numeric tensor.
public protocol TensorElement: Sendable {
    static var dtype: DType { get }
}
extension Float: TensorElement { public static var dtype: DType { .float } }
extension Double: TensorElement { public static var dtype: DType { .double } }
extension Int8: TensorElement { public static var dtype: DType { .int8 } }
extension UInt8: TensorElement { public static var dtype: DType { .uint8 } }
extension Int16: TensorElement { public static var dtype: DType { .int16 } }
extension UInt16: TensorElement { public static var dtype: DType { .uint16 } }
extension Int32: TensorElement { public static var dtype: DType { .int32 } }
extension UInt32: TensorElement { public static var dtype: DType { .uint32 } }
extension Int64: TensorElement { public static var dtype: DType { .int64 } }
extension UInt64: TensorElement { public static var dtype: DType { .uint64 } }
extension Bool: TensorElement { public static var dtype: DType { .bool } }

/// A dense, row-major, little-endian tensor value (constants, runtime values).
///
/// `float16` and `bfloat16` elements are stored as their 16-bit patterns (read them as
/// `UInt16`). `string` tensors keep their elements in `strings` and have empty storage.
public struct Tensor: @unchecked Sendable {
    public let dtype: DType
    public let shape: [Int]
    public let storage: TensorStorage
    public let strings: [[UInt8]]

    /// Number of elements (product of `shape`; 1 for a scalar).
    public let count: Int

    /// Wraps `storage`; throws when its size does not match dtype × shape.
    public init(dtype: DType, shape: [Int], storage: TensorStorage) throws {
        guard dtype != .string else { throw IRError(reason: "string tensors need init(strings:shape:)") }
        guard let n = checkedElementCount(shape), let elementSize = dtype.byteSize else {
            throw IRError(reason: "invalid tensor shape \(shape)")
        }
        let (bytes, overflow) = n.multipliedReportingOverflow(by: elementSize)
        guard !overflow, bytes == storage.byteCount else {
            throw IRError(reason: "tensor data has \(storage.byteCount) bytes, \(dtype) \(shape) needs \(overflow ? "too many" : String(bytes))")
        }
        self.dtype = dtype
        self.shape = shape
        self.storage = storage
        self.strings = []
        self.count = n
    }

    /// A string tensor.
    public init(strings: [[UInt8]], shape: [Int]) throws {
        guard let n = checkedElementCount(shape), n == strings.count else {
            throw IRError(reason: "string tensor has \(strings.count) elements, shape \(shape) needs another count")
        }
        self.dtype = .string
        self.shape = shape
        self.storage = TensorStorage(byteCount: 0)
        self.strings = strings
        self.count = n
    }

    /// A tensor holding `values` (row-major). `values.count` must match `shape`.
    public init<T: TensorElement>(shape: [Int], values: [T]) {
        precondition(checkedElementCount(shape) == values.count, "shape \(shape) does not match \(values.count) values")
        let storage = values.withUnsafeBytes { TensorStorage(copying: $0) }
        self.dtype = T.dtype
        self.shape = shape
        self.storage = storage
        self.strings = []
        self.count = values.count
    }

    /// A scalar (rank-0) tensor.
    public init<T: TensorElement>(scalar: T) {
        self.init(shape: [], values: [scalar])
    }

    /// A zero-filled tensor, filled in by `body` (e.g. a kernel). `shape` must be valid.
    public static func make<T: TensorElement>(
        _ type: T.Type, shape: [Int], _ body: (UnsafeMutableBufferPointer<T>) throws -> Void
    ) rethrows -> Tensor {
        let n = checkedElementCount(shape) ?? 0
        let storage = TensorStorage(byteCount: n * MemoryLayout<T>.stride)
        if let raw = storage.mutableBytes {
            try body(raw.bindMemory(to: T.self))
        }
        return Tensor(unchecked: T.dtype, shape: shape, storage: storage, count: n)
    }

    /// A zero-filled tensor of any numeric dtype.
    public static func zeros(_ dtype: DType, shape: [Int]) -> Tensor {
        let n = checkedElementCount(shape) ?? 0
        return Tensor(unchecked: dtype, shape: shape, storage: TensorStorage(byteCount: n * (dtype.byteSize ?? 0)), count: n)
    }

    private init(unchecked dtype: DType, shape: [Int], storage: TensorStorage, count: Int) {
        self.dtype = dtype
        self.shape = shape
        self.storage = storage
        self.strings = []
        self.count = count
    }

    /// The same bytes under another shape with the same element count (zero copy).
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        guard checkedElementCount(newShape) == count else {
            throw IRError(reason: "cannot reshape \(shape) to \(newShape)")
        }
        if dtype == .string { return try Tensor(strings: strings, shape: newShape) }
        return Tensor(unchecked: dtype, shape: newShape, storage: storage, count: count)
    }

    public var rank: Int { shape.count }
    public var byteCount: Int { storage.byteCount }
    public var type: TensorType { TensorType(dtype, shape: shape) }

    /// Read access to the elements as `T` (which must match the storage's element size).
    public func withElements<T: TensorElement, R>(
        as type: T.Type, _ body: (UnsafeBufferPointer<T>) throws -> R
    ) rethrows -> R {
        precondition(MemoryLayout<T>.stride == (dtype.byteSize ?? -1), "element type \(T.self) does not match \(dtype)")
        return try body(storage.bytes.bindMemory(to: T.self))
    }

    /// The elements copied into an array.
    public func elements<T: TensorElement>(as type: T.Type) -> [T] {
        withElements(as: T.self) { Array($0) }
    }

    /// Elements converted to Double, for any numeric dtype (used by printers and folding).
    public func doubleValues() -> [Double] {
        switch dtype {
        case .float: return withElements(as: Float.self) { $0.map(Double.init) }
        case .double: return elements(as: Double.self)
        case .int8: return withElements(as: Int8.self) { $0.map(Double.init) }
        case .uint8: return withElements(as: UInt8.self) { $0.map(Double.init) }
        case .int16: return withElements(as: Int16.self) { $0.map(Double.init) }
        case .uint16: return withElements(as: UInt16.self) { $0.map(Double.init) }
        case .int32: return withElements(as: Int32.self) { $0.map(Double.init) }
        case .uint32: return withElements(as: UInt32.self) { $0.map(Double.init) }
        case .int64: return withElements(as: Int64.self) { $0.map(Double.init) }
        case .uint64: return withElements(as: UInt64.self) { $0.map { Double($0) } }
        case .bool: return withElements(as: UInt8.self) { $0.map { $0 != 0 ? 1 : 0 } }
        case .float16: return withElements(as: UInt16.self) { $0.map { Double(halfToFloat($0)) } }
        case .bfloat16: return withElements(as: UInt16.self) { $0.map { Double(Float(bitPattern: UInt32($0) << 16)) } }
        case .string: return []
        }
    }

    /// A tensor of the same float dtype and shape whose elements are `transform` of these,
    /// computed in Double and rounded to the dtype (half to even; overflow gives ±inf): e.g.
    /// the reciprocal of a constant, `c.mappingFloats { 1 / $0 }`. nil for non-float dtypes.
    public func mappingFloats(_ transform: (Double) -> Double) -> Tensor? {
        guard dtype.isFloatingPoint else { return nil }
        let values = doubleValues().map(transform)
        switch dtype {
        case .double: return Tensor(shape: shape, values: values)
        case .float: return Tensor(shape: shape, values: values.map { Float($0) })
        case .float16, .bfloat16:
            let bits = values.map { dtype == .float16 ? floatToHalf(Float($0)) : floatToBFloat16(Float($0)) }
            let storage = bits.withUnsafeBytes { TensorStorage(copying: $0) }
            return Tensor(unchecked: dtype, shape: shape, storage: storage, count: bits.count)
        default: return nil
        }
    }

    /// Elements as Int64 for integer dtypes (shape arithmetic); nil for other dtypes.
    public func int64Values() -> [Int64]? {
        switch dtype {
        case .int64: return elements(as: Int64.self)
        case .int32: return withElements(as: Int32.self) { $0.map(Int64.init) }
        case .int8: return withElements(as: Int8.self) { $0.map(Int64.init) }
        case .uint8: return withElements(as: UInt8.self) { $0.map(Int64.init) }
        case .int16: return withElements(as: Int16.self) { $0.map(Int64.init) }
        case .uint16: return withElements(as: UInt16.self) { $0.map(Int64.init) }
        case .uint32: return withElements(as: UInt32.self) { $0.map(Int64.init) }
        case .bool: return withElements(as: UInt8.self) { $0.map(Int64.init) }
        default: return nil
        }
    }

    /// Bitwise equality of dtype, shape and data.
    public func isIdentical(to other: Tensor) -> Bool {
        dtype == other.dtype && shape == other.shape && strings == other.strings
            && storage.bytes.elementsEqual(other.storage.bytes)
    }
}

/// IEEE half (binary16) bit pattern -> Float.
public func halfToFloat(_ h: UInt16) -> Float {
    let sign = UInt32(h >> 15) << 31
    let exponent = Int((h >> 10) & 0x1F)
    let mantissa = UInt32(h & 0x3FF)
    if exponent == 0 {
        if mantissa == 0 { return Float(bitPattern: sign) }
        let value = Float(mantissa) * Float(sign: .plus, exponent: -24, significand: 1)
        return sign != 0 ? -value : value
    }
    if exponent == 31 {
        return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
    }
    return Float(bitPattern: sign | (UInt32(exponent - 15 + 127) << 23) | (mantissa << 13))
}

/// Float -> bfloat16 bit pattern (the upper half of the float), round half to even; NaN
/// stays a quiet NaN.
public func floatToBFloat16(_ f: Float) -> UInt16 {
    let bits = f.bitPattern
    if f.isNaN { return UInt16(bits >> 16) | 0x40 }
    let rounded = bits &+ 0x7FFF &+ ((bits >> 16) & 1)
    return UInt16(rounded >> 16)
}

/// Float -> IEEE half bit pattern, round half to even, with overflow to infinity.
public func floatToHalf(_ f: Float) -> UInt16 {
    let bits = f.bitPattern
    let sign = UInt16((bits >> 16) & 0x8000)
    let exponent = Int((bits >> 23) & 0xFF)
    var mantissa = bits & 0x7F_FFFF
    if exponent == 0xFF {
        return sign | 0x7C00 | (mantissa != 0 ? 0x200 : 0)
    }
    var e = exponent - 127 + 15
    if e >= 31 { return sign | 0x7C00 }
    if e <= 0 {
        if e < -10 { return sign }
        mantissa |= 0x80_0000
        let shift = UInt32(14 - e)
        let halfway = UInt32(1) << (shift - 1)
        var result = mantissa >> shift
        let rest = mantissa & ((UInt32(1) << shift) - 1)
        if rest > halfway || (rest == halfway && (result & 1) == 1) { result += 1 }
        return sign | UInt16(result)
    }
    var result = mantissa >> 13
    let rest = mantissa & 0x1FFF
    if rest > 0x1000 || (rest == 0x1000 && (result & 1) == 1) {
        result += 1
        if result == 0x400 { result = 0; e += 1 }
        if e >= 31 { return sign | 0x7C00 }
    }
    return sign | UInt16(e << 10) | UInt16(result)
}
