import Foundation

/// 8-lane float math for the hot elementwise kernels (exp, erf, tanh, sigmoid), in
/// portable Swift SIMD (SSE2 baseline: no rounding or blend instructions are needed).
/// Accuracy: exp within 2 ulp on [-87.3, 88.3] (0 below, libm above); erf and tanh
/// within 3e-7 absolute and 1e-6 relative. Every result is checked against libm by
/// VectorMathTests.
typealias Float8 = SIMD8<Float>

@inline(__always) func splat(_ v: Float) -> Float8 { Float8(repeating: v) }

@inline(__always) func bits(_ x: Float8) -> SIMD8<UInt32> { unsafeBitCast(x, to: SIMD8<UInt32>.self) }
@inline(__always) func floats(_ x: SIMD8<UInt32>) -> Float8 { unsafeBitCast(x, to: Float8.self) }
@inline(__always) func absolute(_ x: Float8) -> Float8 { floats(bits(x) & SIMD8(repeating: 0x7FFF_FFFF)) }
/// Lane-wise max and min (the standard library's pointwiseMax/Min are not inlined).
@inline(__always) func larger(_ a: Float8, _ b: Float8) -> Float8 { a.replacing(with: b, where: b .> a) }
@inline(__always) func smaller(_ a: Float8, _ b: Float8) -> Float8 { a.replacing(with: b, where: b .< a) }

/// e^x.
@inline(__always)
func vectorExp(_ x: Float8) -> Float8 {
    let low: Float = -87.33654, high: Float = 88.37
    let clamped = smaller(larger(x, splat(low)), splat(high))
    // Round x·log2(e) to the nearest integer n with the 1.5·2^23 trick; the low bits of
    // the biased float then hold n.
    let magic = splat(12_582_912)
    let biased = clamped * splat(1.442_695_04) + magic
    let n = biased - magic
    let r = clamped - n * splat(0.693_359_375) + n * splat(2.121_944_4e-4)
    var p = splat(1.987_569_15e-4)
    p = p * r + splat(1.398_199_95e-3)
    p = p * r + splat(8.333_451_9e-3)
    p = p * r + splat(4.166_579_59e-2)
    p = p * r + splat(1.666_666_55e-1)
    p = p * r + splat(5.000_000_12e-1)
    p = p * (r * r) + r + splat(1)
    let exponent = (bits(biased) &- bits(magic) &+ SIMD8<UInt32>(repeating: 127)) &<< 23
    var result = p * floats(exponent)
    result.replace(with: 0, where: x .< splat(low))
    result.replace(with: x, where: x .!= x)
    if any(x .> splat(high)) {
        for i in 0..<8 where x[i] > high { result[i] = Foundation.exp(x[i]) }
    }
    return result
}

/// 1 / (1 + e^-x).
@inline(__always)
func vectorSigmoid(_ x: Float8) -> Float8 {
    splat(1) / (splat(1) + vectorExp(-x))
}

/// erf(x): Taylor series below |x| = 0.5 (relative accuracy near 0), Abramowitz & Stegun
/// 7.1.26 above (absolute error < 1.5e-7), exactly ±1 beyond |x| = 4.
@inline(__always)
func vectorErf(_ x: Float8) -> Float8 {
    let a = absolute(x)
    // Small: (2/√π)(x − x³/3 + x⁵/10 − x⁷/42 + x⁹/216 − x¹¹/1320)
    let x2 = x * x
    var s = splat(-1.0 / 1320)
    s = s * x2 + splat(1.0 / 216)
    s = s * x2 + splat(-1.0 / 42)
    s = s * x2 + splat(1.0 / 10)
    s = s * x2 + splat(-1.0 / 3)
    s = s * x2 + splat(1)
    let small = s * x * splat(1.128_379_167)
    // Large: 1 − (a1 t + … + a5 t⁵) e^(−x²), t = 1 / (1 + p|x|)
    let t = splat(1) / (splat(1) + splat(0.327_591_1) * a)
    var q = splat(1.061_405_429)
    q = q * t + splat(-1.453_152_027)
    q = q * t + splat(1.421_413_741)
    q = q * t + splat(-0.284_496_736)
    q = q * t + splat(0.254_829_592)
    var large = splat(1) - q * t * vectorExp(-x2)
    large.replace(with: 1, where: a .> splat(4))
    large.replace(with: -large, where: x .< 0)
    var result = large
    result.replace(with: small, where: a .< splat(0.5))
    result.replace(with: x, where: x .!= x)
    return result
}

/// tanh(x): Taylor series below |x| = 0.15, else sign(x)(1 − 2 / (e^{2|x|} + 1)).
@inline(__always)
func vectorTanh(_ x: Float8) -> Float8 {
    let a = absolute(x)
    let x2 = x * x
    var s = splat(-1382.0 / 155_925)
    s = s * x2 + splat(62.0 / 2835)
    s = s * x2 + splat(-17.0 / 315)
    s = s * x2 + splat(2.0 / 15)
    s = s * x2 + splat(-1.0 / 3)
    let small = x + x * x2 * s
    var large = splat(1) - splat(2) / (vectorExp(splat(2) * a) + splat(1))
    large.replace(with: -large, where: x .< 0)
    var result = large
    result.replace(with: small, where: a .< splat(0.15))
    result.replace(with: x, where: x .!= x)
    return result
}

