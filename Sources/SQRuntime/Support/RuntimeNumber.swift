import Foundation
import SQIR

/// A scalar as `Cast` sees it: a real number or an exact integer of either sign.
enum ScalarValue {
    case real(Double)
    case signed(Int64)
    case unsigned(UInt64)
}

/// Element types the kernels compute on directly. float16 and bfloat16 are widened to
/// Float around the kernels; bool is stored as UInt8 (0 or 1).
///
/// Integer arithmetic wraps (like C and onnxruntime) and integer division by zero gives
/// 0 instead of trapping: user data must never crash the process.
protocol RuntimeNumber: TensorElement, Comparable {
    static var zero: Self { get }
    static var one: Self { get }
    /// The identity of `max` (-inf for floats, the minimum for integers).
    static var lowest: Self { get }
    /// The identity of `min`.
    static var highest: Self { get }
    static var isFloatingPointType: Bool { get }
    static func add(_ a: Self, _ b: Self) -> Self
    static func subtract(_ a: Self, _ b: Self) -> Self
    static func multiply(_ a: Self, _ b: Self) -> Self
    static func divide(_ a: Self, _ b: Self) -> Self
    /// ONNX Mod: `fmod` true = sign of the dividend (C fmod), false = sign of the divisor.
    static func modulo(_ a: Self, _ b: Self, fmod: Bool) -> Self
    static func negate(_ a: Self) -> Self
    static func absolute(_ a: Self) -> Self
    /// max/min; for floats a NaN operand gives NaN (as numpy).
    static func larger(_ a: Self, _ b: Self) -> Self
    static func smaller(_ a: Self, _ b: Self) -> Self
    var doubleValue: Double { get }
    var scalarValue: ScalarValue { get }
    /// Conversion with C semantics where defined; NaN -> 0 and saturation where C is undefined.
    init(scalar: ScalarValue)
    init(double: Double)
}


/// Saturating, NaN-safe conversion of a real number to an integer type (rounds toward zero).
@inline(__always)
func saturatingInteger<I: FixedWidthInteger>(_ x: Double) -> I {
    if x.isNaN { return 0 }
    if x <= Double(I.min) { return I.min }
    if x >= Double(I.max) { return I.max }
    return I(x)
}

/// Floating-point element types with the elementary functions the kernels need
/// (named so they do not shadow the C library's `exp`, `log`, ...).
protocol RuntimeFloat: RuntimeNumber, BinaryFloatingPoint {
    static func exponential(_ x: Self) -> Self
    static func logarithm(_ x: Self) -> Self
    static func log1plus(_ x: Self) -> Self
    static func errorFunction(_ x: Self) -> Self
    static func hyperbolicTangent(_ x: Self) -> Self
    static func power(_ x: Self, _ y: Self) -> Self
    static func trig(_ function: TrigFunction, _ x: Self) -> Self
}

enum TrigFunction: Sendable {
    case sin, cos, tan, asin, acos, atan, sinh, cosh, asinh, acosh, atanh
}

extension RuntimeFloat {
    static var one: Self { 1 }
    static var lowest: Self { -infinity }
    static var highest: Self { infinity }
    static var isFloatingPointType: Bool { true }
    @inline(__always) static func add(_ a: Self, _ b: Self) -> Self { a + b }
    @inline(__always) static func subtract(_ a: Self, _ b: Self) -> Self { a - b }
    @inline(__always) static func multiply(_ a: Self, _ b: Self) -> Self { a * b }
    @inline(__always) static func divide(_ a: Self, _ b: Self) -> Self { a / b }
    static func modulo(_ a: Self, _ b: Self, fmod: Bool) -> Self {
        let r = a.truncatingRemainder(dividingBy: b)
        if fmod || r == 0 || (r < 0) == (b < 0) { return r }
        return r + b
    }
    @inline(__always) static func negate(_ a: Self) -> Self { -a }
    @inline(__always) static func absolute(_ a: Self) -> Self { Swift.abs(a) }
    @inline(__always) static func larger(_ a: Self, _ b: Self) -> Self { a.isNaN || b.isNaN ? .nan : (a < b ? b : a) }
    @inline(__always) static func smaller(_ a: Self, _ b: Self) -> Self { a.isNaN || b.isNaN ? .nan : (b < a ? b : a) }
    var scalarValue: ScalarValue { .real(Double(self)) }
    init(scalar: ScalarValue) {
        switch scalar {
        case .real(let d): self.init(d)
        case .signed(let i): self.init(i)
        case .unsigned(let u): self.init(u)
        }
    }
    init(double: Double) { self.init(double) }
}

extension Float: RuntimeFloat {
    var doubleValue: Double { Double(self) }
    @inline(__always) static func exponential(_ x: Float) -> Float { exp(x) }
    @inline(__always) static func logarithm(_ x: Float) -> Float { log(x) }
    @inline(__always) static func log1plus(_ x: Float) -> Float { log1p(x) }
    @inline(__always) static func errorFunction(_ x: Float) -> Float { erf(x) }
    @inline(__always) static func hyperbolicTangent(_ x: Float) -> Float { tanh(x) }
    @inline(__always) static func power(_ x: Float, _ y: Float) -> Float { pow(x, y) }
    static func trig(_ function: TrigFunction, _ x: Float) -> Float {
        switch function {
        case .sin: return sin(x)
        case .cos: return cos(x)
        case .tan: return tan(x)
        case .asin: return asin(x)
        case .acos: return acos(x)
        case .atan: return atan(x)
        case .sinh: return sinh(x)
        case .cosh: return cosh(x)
        case .asinh: return asinh(x)
        case .acosh: return acosh(x)
        case .atanh: return atanh(x)
        }
    }
}
extension Double: RuntimeFloat {
    var doubleValue: Double { self }
    @inline(__always) static func exponential(_ x: Double) -> Double { exp(x) }
    @inline(__always) static func logarithm(_ x: Double) -> Double { log(x) }
    @inline(__always) static func log1plus(_ x: Double) -> Double { log1p(x) }
    @inline(__always) static func errorFunction(_ x: Double) -> Double { erf(x) }
    @inline(__always) static func hyperbolicTangent(_ x: Double) -> Double { tanh(x) }
    @inline(__always) static func power(_ x: Double, _ y: Double) -> Double { pow(x, y) }
    static func trig(_ function: TrigFunction, _ x: Double) -> Double {
        switch function {
        case .sin: return sin(x)
        case .cos: return cos(x)
        case .tan: return tan(x)
        case .asin: return asin(x)
        case .acos: return acos(x)
        case .atan: return atan(x)
        case .sinh: return sinh(x)
        case .cosh: return cosh(x)
        case .asinh: return asinh(x)
        case .acosh: return acosh(x)
        case .atanh: return atanh(x)
        }
    }
}

protocol RuntimeInteger: RuntimeNumber, FixedWidthInteger {}

extension RuntimeInteger {
    static var one: Self { 1 }
    static var lowest: Self { min }
    static var highest: Self { max }
    static var isFloatingPointType: Bool { false }
    @inline(__always) static func add(_ a: Self, _ b: Self) -> Self { a &+ b }
    @inline(__always) static func subtract(_ a: Self, _ b: Self) -> Self { a &- b }
    @inline(__always) static func multiply(_ a: Self, _ b: Self) -> Self { a &* b }
    @inline(__always) static func divide(_ a: Self, _ b: Self) -> Self {
        b == 0 ? 0 : a.dividedReportingOverflow(by: b).partialValue
    }
    static func modulo(_ a: Self, _ b: Self, fmod: Bool) -> Self {
        if b == 0 { return 0 }
        let r = a.remainderReportingOverflow(dividingBy: b).partialValue
        if fmod || r == 0 || (r < 0) == (b < 0) { return r }
        return r &+ b
    }
    @inline(__always) static func negate(_ a: Self) -> Self { 0 &- a }
    @inline(__always) static func absolute(_ a: Self) -> Self { a < 0 ? 0 &- a : a }
    @inline(__always) static func larger(_ a: Self, _ b: Self) -> Self { a < b ? b : a }
    @inline(__always) static func smaller(_ a: Self, _ b: Self) -> Self { b < a ? b : a }
    var doubleValue: Double { Double(self) }
    var scalarValue: ScalarValue {
        Self.isSigned ? .signed(Int64(truncatingIfNeeded: self)) : .unsigned(UInt64(truncatingIfNeeded: self))
    }
    init(scalar: ScalarValue) {
        switch scalar {
        case .real(let d): self = saturatingInteger(d)
        case .signed(let i): self.init(truncatingIfNeeded: i)
        case .unsigned(let u): self.init(truncatingIfNeeded: u)
        }
    }
    init(double: Double) { self = saturatingInteger(double) }
}

extension Int8: RuntimeInteger {}
extension UInt8: RuntimeInteger {}
extension Int16: RuntimeInteger {}
extension UInt16: RuntimeInteger {}
extension Int32: RuntimeInteger {}
extension UInt32: RuntimeInteger {}
extension Int64: RuntimeInteger {}
extension UInt64: RuntimeInteger {}

/// A computation generic over the element type, run for a dtype chosen at run time
/// (Swift has no generic closures, so each op family writes a small struct).
protocol NumericComputation {
    associatedtype Output
    func run<T: RuntimeNumber>(_ type: T.Type) throws -> Output
}

extension NumericComputation {
    /// Runs for the storage type of `dtype`; float16/bfloat16 must be widened first.
    @inline(__always)
    func dispatch(_ dtype: DType) throws -> Output {
        switch dtype {
        case .float: return try run(Float.self)
        case .double: return try run(Double.self)
        case .int8: return try run(Int8.self)
        case .uint8, .bool: return try run(UInt8.self)
        case .int16: return try run(Int16.self)
        case .uint16: return try run(UInt16.self)
        case .int32: return try run(Int32.self)
        case .uint32: return try run(UInt32.self)
        case .int64: return try run(Int64.self)
        case .uint64: return try run(UInt64.self)
        case .float16, .bfloat16, .string: throw OpError.unsupportedType(dtype)
        }
    }
}

/// A computation generic over floating-point element types only.
protocol FloatComputation {
    associatedtype Output
    func run<T: RuntimeFloat>(_ type: T.Type) throws -> Output
}

extension FloatComputation {
    @inline(__always)
    func dispatch(_ dtype: DType) throws -> Output {
        switch dtype {
        case .float: return try run(Float.self)
        case .double: return try run(Double.self)
        default: throw OpError.unsupportedType(dtype)
        }
    }
}

/// A computation generic over integer element types only (bitwise ops).
protocol IntegerComputation {
    associatedtype Output
    func run<T: RuntimeInteger>(_ type: T.Type) throws -> Output
}

extension IntegerComputation {
    @inline(__always)
    func dispatch(_ dtype: DType) throws -> Output {
        switch dtype {
        case .int8: return try run(Int8.self)
        case .uint8: return try run(UInt8.self)
        case .int16: return try run(Int16.self)
        case .uint16: return try run(UInt16.self)
        case .int32: return try run(Int32.self)
        case .uint32: return try run(UInt32.self)
        case .int64: return try run(Int64.self)
        case .uint64: return try run(UInt64.self)
        default: throw OpError.unsupportedType(dtype)
        }
    }
}

/// Calls `body` with an unsigned integer type of the dtype's byte size, for kernels that
/// only move elements (Where, Transpose, Gather, ...) and so work for every dtype.
protocol BitPatternComputation {
    associatedtype Output
    func run<T: FixedWidthInteger & UnsignedInteger & TensorElement>(_ type: T.Type) throws -> Output
}

extension BitPatternComputation {
    @inline(__always)
    func dispatch(_ dtype: DType) throws -> Output {
        switch dtype.byteSize {
        case 1: return try run(UInt8.self)
        case 2: return try run(UInt16.self)
        case 4: return try run(UInt32.self)
        case 8: return try run(UInt64.self)
        default: throw OpError.unsupportedType(dtype)
        }
    }
}
