// `sqopt-bench gemm`: times sqopt's fp32 and int8 GEMMs through the public SQRuntime API.
import Dispatch
import Foundation
import SQIR
import SQRuntime

struct GemmShape: Codable, Equatable {
    let m: Int, k: Int, n: Int
    var label: String { "\(m)x\(k)x\(n)" }
    /// Multiply-adds counted twice: the "operations" of GFLOPS / GOPS.
    var operations: Double { 2.0 * Double(m) * Double(k) * Double(n) }
}

enum GemmKernel: String, Codable, CaseIterable {
    /// fp32 GEMM, packed constant B.
    case fp32
    /// s8 x s8 GEMM, packed constant B, int32 accumulation, fused per-token x per-channel
    /// float epilogue (the activations are already int8).
    case int8
    /// int8 plus per-token quantization of the float activations (a whole W8A8 linear).
    case int8Linear = "int8-linear"
}

struct GemmBenchOptions {
    var json = false
    var threads = [1, 2]
    var shapes = [GemmShape(m: 256, k: 256, n: 256), GemmShape(m: 768, k: 768, n: 768),
                  GemmShape(m: 1024, k: 1024, n: 1024), GemmShape(m: 512, k: 768, n: 3072),
                  GemmShape(m: 1, k: 576, n: 1536)]
    var kernels = GemmKernel.allCases
    var minTime = 0.3
}

struct GemmMeasurement: Codable {
    let shape: GemmShape
    let kernel: GemmKernel
    let threads: Int
    let isa: String
    let runs: Int
    let medianMs: Double
    /// The fastest run (a steadier figure than the median on a loaded machine).
    let bestMs: Double
    /// GFLOPS for fp32, GOPS for int8, from the median.
    let gops: Double
}

/// Median and fastest wall time of `body` over at least 5 runs and `minTime` seconds
/// (after warm-up), and the number of runs.
func timeRuns(minTime: Double, _ body: () throws -> Void) rethrows
    -> (median: Double, best: Double, runs: Int) {
    func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }
    let warmUpEnd = now() + min(0.05, minTime)
    repeat { try body() } while now() < warmUpEnd
    var times: [Double] = []
    let start = now()
    while times.count < 5 || (now() - start < minTime && times.count < 10_000) {
        let t0 = now()
        try body()
        times.append(now() - t0)
    }
    times.sort()
    return (times[times.count / 2], times[0], times.count)
}

/// Operands of one shape, made once and reused for every thread count and kernel.
final class GemmOperands {
    let shape: GemmShape
    let floatA: [Float]
    let packedF32: PackedFloat32Weights
    let int8A: [Int8]
    let rowScales: [Float]
    let packedInt8: PackedInt8Weights
    var out: [Float]

    init(_ shape: GemmShape) throws {
        self.shape = shape
        var rng = SplitMix64(seed: UInt64(shape.m * 1_000_003 + shape.k * 1009 + shape.n))
        let (m, k, n) = (shape.m, shape.k, shape.n)
        floatA = (0..<(m * k)).map { _ in Float.random(in: -1...1, using: &rng) }
        let floatB = (0..<(k * n)).map { _ in Float.random(in: -1...1, using: &rng) }
        packedF32 = try PackedFloat32Weights(k: k, n: n, values: floatB)
        int8A = (0..<(m * k)).map { _ in Int8(truncatingIfNeeded: rng.next()) }
        let int8B = (0..<(k * n)).map { _ in Int8(truncatingIfNeeded: rng.next()) }
        rowScales = (0..<m).map { _ in Float.random(in: 0.001...0.01, using: &rng) }
        let columnScales = (0..<n).map { _ in Float.random(in: 0.001...0.01, using: &rng) }
        packedInt8 = try PackedInt8Weights(k: k, n: n, values: int8B, scales: columnScales)
        out = [Float](repeating: 0, count: m * n)
    }

    func run(_ kernel: GemmKernel, threads: Int) throws {
        let m = shape.m
        try floatA.withUnsafeBufferPointer { floatA in
            try int8A.withUnsafeBufferPointer { int8A in
                try rowScales.withUnsafeBufferPointer { rowScales in
                    try out.withUnsafeMutableBufferPointer { out in
                        switch kernel {
                        case .fp32:
                            try gemmF32(a: floatA, m: m, b: packedF32, out: out, threads: threads)
                        case .int8:
                            try gemmInt8(a: int8A, m: m, aScales: rowScales, b: packedInt8,
                                         out: out, threads: threads)
                        case .int8Linear:
                            try linearInt8(x: floatA, m: m, activation: .perToken,
                                           weights: packedInt8, out: out, threads: threads)
                        }
                    }
                }
            }
        }
    }
}


func runGemmBench(_ options: GemmBenchOptions) throws {
    var results: [GemmMeasurement] = []
    let isa = KernelISA.active.rawValue
    for shape in options.shapes {
        let operands = try GemmOperands(shape)
        for threads in options.threads {
            for kernel in options.kernels {
                let time = try timeRuns(minTime: options.minTime) {
                    try operands.run(kernel, threads: threads)
                }
                results.append(GemmMeasurement(shape: shape, kernel: kernel, threads: threads,
                                               isa: isa, runs: time.runs,
                                               medianMs: time.median * 1e3, bestMs: time.best * 1e3,
                                               gops: shape.operations / time.median / 1e9))
            }
        }
    }
    if options.json {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        print(String(decoding: try encoder.encode(results), as: UTF8.self))
    } else {
        printTable(results, options: options, isa: isa)
    }
}

func printTable(_ results: [GemmMeasurement], options: GemmBenchOptions, isa: String) {
    print("sqopt GEMM, isa \(isa), median of >= 5 runs and \(options.minTime) s; GFLOPS (fp32) / GOPS (int8)")
    var header = "shape".padding(toLength: 16, withPad: " ", startingAt: 0) + "threads"
    for kernel in options.kernels { header += kernel.rawValue.leftPadded(13) }
    if options.kernels.contains(.fp32) && options.kernels.contains(.int8) { header += "int8/fp32".leftPadded(11) }
    print(header)
    for shape in options.shapes {
        for threads in options.threads {
            let row = results.filter { $0.shape == shape && $0.threads == threads }
            var line = shape.label.padding(toLength: 16, withPad: " ", startingAt: 0) + String(threads).leftPadded(7)
            for kernel in options.kernels {
                let value = row.first { $0.kernel == kernel }?.gops ?? .nan
                line += String(format: "%.1f", value).leftPadded(13)
            }
            if let f = row.first(where: { $0.kernel == .fp32 }), let i = row.first(where: { $0.kernel == .int8 }) {
                line += String(format: "%.2fx", i.gops / f.gops).leftPadded(11)
            }
            print(line)
        }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? " " + self : String(repeating: " ", count: width - count) + self
    }
}
