// The Swift wrappers of SQRuntime/Kernels: argument checks, threading (bit-identical for
// any thread count), batched and dynamic-B variants against the single-product calls.
import Dispatch
import Foundation
import SQIR
import Synchronization
import Testing
@testable import SQRuntime

extension KernelTests {
@Suite("kernel wrappers")
struct WrapperTests {
    static func floats(_ count: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<count).map { _ in Float.random(in: -1...1, using: &rng) }
    }

    static func int8s(_ count: Int, seed: UInt64) -> [Int8] {
        var rng = SplitMix64(seed: seed)
        return (0..<count).map { _ in Int8(truncatingIfNeeded: rng.next()) }
    }

    @Test("partition: small work stays on one piece, large work splits panels or rows")
    func partition() {
        let small = GemmPartition(rows: 64, panels: 8, operations: 1e6, minOperationsPerThread: 5e7, threads: 2)
        #expect(small.pieces == 1)
        let wide = GemmPartition(rows: 512, panels: 96, operations: 2.4e9, minOperationsPerThread: 5e7, threads: 2)
        #expect(wide.axis == .panels && wide.pieces == 2)
        #expect(wide.range(0) == 0..<48 && wide.range(1) == 48..<96)
        let smallWeights = GemmPartition(rows: 256, panels: 8, operations: 3.4e7, minOperationsPerThread: 8e6,
                                         threads: 2, weightBytes: 65536)
        #expect(smallWeights.axis == .rows && smallWeights.pieces == 2)
        #expect(smallWeights.range(0) == 0..<128 && smallWeights.range(1) == 128..<256)
        let tall = GemmPartition(rows: 1000, panels: 2, operations: 1e9, minOperationsPerThread: 5e7, threads: 2)
        #expect(tall.axis == .rows && tall.pieces == 2)
        #expect(tall.range(0).lowerBound == 0 && tall.range(1).upperBound == 1000)
        #expect(tall.range(0).upperBound == tall.range(1).lowerBound && tall.range(0).upperBound % 16 == 0)
    }

    @Test("partition: decode products (m = 1) split panels once B is large enough to stream")
    func decodePartition() {
        // 576 x 1536 int8 (0.9 MB): work alone (1.8e6 ops) is below the threshold.
        // (The default threshold; SQOPT_SPLIT_DECODE=0 makes it infinite.)
        let decode = GemmPartition(rows: 1, panels: 48, operations: 2.0 * 576 * 1536,
                                   minOperationsPerThread: int8MinOperationsPerThread, threads: 2,
                                   weightBytes: 576 * 1536, streamedBytes: 576 * 1536,
                                   minStreamedBytes: 256 * 1024)
        #expect(decode.axis == .panels && decode.pieces == 2)
        #expect(decode.range(0) == 0..<24 && decode.range(1) == 24..<48)
        let byDefault = GemmPartition(rows: 1, panels: 48, operations: 2.0 * 576 * 1536,
                                      minOperationsPerThread: int8MinOperationsPerThread, threads: 2,
                                      weightBytes: 576 * 1536, streamedBytes: 576 * 1536,
                                      minStreamedBytes: .infinity)
        #expect(byDefault.pieces == 1)
        // 576 x 192 int8 (0.1 MB) stays on the calling thread.
        let narrow = GemmPartition(rows: 1, panels: 6, operations: 2.0 * 576 * 192,
                                   minOperationsPerThread: int8MinOperationsPerThread, threads: 2,
                                   weightBytes: 576 * 192, streamedBytes: 576 * 192,
                                   minStreamedBytes: 256 * 1024)
        #expect(narrow.pieces == 1)
    }

    @Test("decode shapes (m = 1…3), split as decode products are split: 1 and 2 threads give the same bits")
    func decodeThreads() throws {
        let (k, n) = (576, 1536 + 17)  // a partial last panel
        let b = Self.floats(k * n, seed: 40), bias = Self.floats(n, seed: 41)
        let packedF32 = try PackedFloat32Weights(k: k, n: n, values: b)
        let packedS8 = try PackedInt8Weights(k: k, n: n, values: Self.int8s(k * n, seed: 42),
                                             scales: Self.floats(n, seed: 43).map { abs($0) / 100 })
        for m in [1, 2, 3] {
            let x = Self.floats(m * k, seed: 44 + UInt64(m))
            var q = [Int8](repeating: 0, count: m * k), scales = [Float](repeating: 0, count: m)
            try x.withUnsafeBufferPointer { x in
                try q.withUnsafeMutableBufferPointer { q in
                    try scales.withUnsafeMutableBufferPointer { s in
                        try quantizeRowsInt8(x, rows: m, cols: k, mode: .perToken, into: q, scales: s)
                    }
                }
            }
            var f32: [[UInt32]] = [], s8: [[UInt32]] = []
            for threads in [1, 2] {
                var out = [Float](repeating: 0, count: m * n), outS8 = out
                let status = KernelStatus()
                x.withUnsafeBufferPointer { x in
                    bias.withUnsafeBufferPointer { bias in
                        out.withUnsafeMutableBufferPointer { out in
                            gemmF32Unchecked(m: m, n: n, k: k, a: x.baseAddress, packed: packedF32.storage,
                                             out: out.baseAddress, bias: bias.baseAddress, accumulate: false,
                                             threads: threads, status: status, minStreamedBytes: 256 * 1024)
                        }
                        q.withUnsafeBufferPointer { q in
                            scales.withUnsafeBufferPointer { s in
                                packedS8.scales.withUnsafeBufferPointer { bs in
                                    outS8.withUnsafeMutableBufferPointer { out in
                                        gemmInt8Unchecked(m: m, n: n, k: k, a: q.baseAddress, packed: packedS8.storage,
                                                          out: .float(out.baseAddress), aScales: s.baseAddress,
                                                          aPerRow: m != 1, bScales: bs.baseAddress, bPerColumn: true,
                                                          bias: bias.baseAddress, threads: threads, status: status,
                                                          minStreamedBytes: 256 * 1024)
                                    }
                                }
                            }
                        }
                    }
                }
                try status.check()
                f32.append(out.map(\.bitPattern))
                s8.append(outS8.map(\.bitPattern))
            }
            #expect(f32[0] == f32[1], "fp32 m\(m)")
            #expect(s8[0] == s8[1], "int8 m\(m)")
        }
    }

    @Test("gemmF32: 1 and 2 threads give the same bits (panel and row splits)")
    func f32Threads() throws {
        // (m, k, n): wide (panel split) and narrow (row split); both above the threshold.
        for (m, k, n) in [(200, 500, 512), (1500, 1100, 40)] {
            let a = Self.floats(m * k, seed: 10), b = Self.floats(k * n, seed: 11)
            let bias = Self.floats(n, seed: 12)
            let packed = try PackedFloat32Weights(k: k, n: n, values: b)
            var results: [[Float]] = []
            for threads in [1, 2] {
                var out = [Float](repeating: 0, count: m * n)
                try a.withUnsafeBufferPointer { a in
                    try bias.withUnsafeBufferPointer { bias in
                        try out.withUnsafeMutableBufferPointer { out in
                            try gemmF32(a: a, m: m, b: packed, out: out, bias: bias, threads: threads)
                        }
                    }
                }
                results.append(out)
            }
            #expect(results[0].map(\.bitPattern) == results[1].map(\.bitPattern), "m\(m) k\(k) n\(n)")
        }
    }

    @Test("gemmInt8 and linearInt8: 1 and 2 threads give the same bits")
    func int8Threads() throws {
        let (m, k, n) = (400, 1000, 512)
        let x = Self.floats(m * k, seed: 20)
        let weights = try PackedInt8Weights(k: k, n: n, values: Self.int8s(k * n, seed: 21),
                                            scales: Self.floats(n, seed: 22).map { abs($0) / 100 })
        var results: [[Float]] = []
        for threads in [1, 2] {
            var out = [Float](repeating: 0, count: m * n)
            try x.withUnsafeBufferPointer { x in
                try out.withUnsafeMutableBufferPointer { out in
                    try linearInt8(x: x, m: m, activation: .perToken, weights: weights, out: out,
                                   threads: threads)
                }
            }
            results.append(out)
        }
        #expect(results[0].map(\.bitPattern) == results[1].map(\.bitPattern))
    }

    @Test("linearInt8 = quantizeRowsInt8 then gemmInt8; per-tensor mode too")
    func linearComposition() throws {
        let (m, k, n) = (7, 45, 33)
        let x = Self.floats(m * k, seed: 30), bias = Self.floats(n, seed: 31)
        let weights = try PackedInt8Weights(k: k, n: n, values: Self.int8s(k * n, seed: 32), scales: [0.01])
        for mode in [ActivationQuantization.perToken, .perTensor(scale: 0.004)] {
            var fused = [Float](repeating: 0, count: m * n), manual = fused
            var q = [Int8](repeating: 0, count: m * k)
            var scales = [Float](repeating: 0.004, count: mode == .perToken ? m : 1)
            try x.withUnsafeBufferPointer { x in
                try bias.withUnsafeBufferPointer { bias in
                    try fused.withUnsafeMutableBufferPointer { out in
                        try linearInt8(x: x, m: m, activation: mode, weights: weights, out: out, bias: bias)
                    }
                    try q.withUnsafeMutableBufferPointer { q in
                        try scales.withUnsafeMutableBufferPointer { s in
                            try quantizeRowsInt8(x, rows: m, cols: k, mode: mode, into: q, scales: s)
                        }
                    }
                    try q.withUnsafeBufferPointer { q in
                        try scales.withUnsafeBufferPointer { s in
                            try manual.withUnsafeMutableBufferPointer { out in
                                try gemmInt8(a: q, m: m, aScales: s, b: weights, out: out, bias: bias)
                            }
                        }
                    }
                }
            }
            #expect(fused.map(\.bitPattern) == manual.map(\.bitPattern), "\(mode)")
        }
    }

    @Test("batchedGemmF32 (plain and transposed B) equals one product at a time")
    func batchedF32() throws {
        let (batch, m, k, n) = (3, 9, 20, 37)
        let a = Self.floats(batch * m * k, seed: 40), b = Self.floats(batch * k * n, seed: 41)
        for transposeB in [false, true] {
            var batched = [Float](repeating: 0, count: batch * m * n)
            try a.withUnsafeBufferPointer { a in
                try b.withUnsafeBufferPointer { b in
                    try batched.withUnsafeMutableBufferPointer { out in
                        try batchedGemmF32(a: a, b: b, batch: batch, m: m, k: k, n: n,
                                           transposeB: transposeB, out: out)
                    }
                }
            }
            for index in 0..<batch {
                let slice = Array(b[(index * k * n)..<((index + 1) * k * n)])
                let packed = try PackedFloat32Weights(k: k, n: n, values: slice, transposed: transposeB)
                var single = [Float](repeating: 0, count: m * n)
                try a[(index * m * k)..<((index + 1) * m * k)].withUnsafeBufferPointer { a in
                    try single.withUnsafeMutableBufferPointer { out in
                        try gemmF32(a: a, m: m, b: packed, out: out)
                    }
                }
                #expect(Array(batched[(index * m * n)..<((index + 1) * m * n)]) == single,
                        "product \(index) transposeB \(transposeB)")
            }
        }
    }

    @Test("batchedGemmInt8 with per-row and per-column scales matches the exact product")
    func batchedInt8() throws {
        let (batch, m, k, n) = (2, 5, 13, 11)
        let a = Self.int8s(batch * m * k, seed: 50), b = Self.int8s(batch * k * n, seed: 51)
        let aScales = Self.floats(batch * m, seed: 52).map { abs($0) + 0.01 }
        let bScales = Self.floats(batch * n, seed: 53).map { abs($0) + 0.01 }
        let bT = (0..<batch).flatMap { i in
            transpose(Array(b[(i * k * n)..<((i + 1) * k * n)]), rows: k, cols: n)
        }
        for transposeB in [false, true] {
            var out = [Float](repeating: 0, count: batch * m * n)
            try a.withUnsafeBufferPointer { a in
                try (transposeB ? bT : b).withUnsafeBufferPointer { b in
                    try aScales.withUnsafeBufferPointer { sa in
                        try bScales.withUnsafeBufferPointer { sb in
                            try out.withUnsafeMutableBufferPointer { out in
                                try batchedGemmInt8(a: a, aScales: sa, b: b, bScales: sb, batch: batch,
                                                    m: m, k: k, n: n, transposeB: transposeB, out: out)
                            }
                        }
                    }
                }
            }
            for index in 0..<batch {
                let acc = referenceS8(a: Array(a[(index * m * k)..<((index + 1) * m * k)]),
                                      b: Array(b[(index * k * n)..<((index + 1) * k * n)]), m: m, n: n, k: k)
                for i in 0..<m {
                    for j in 0..<n {
                        let expected = Float(acc[i * n + j]) * (aScales[index * m + i] * bScales[index * n + j])
                        #expect(out[(index * m + i) * n + j] == expected)
                    }
                }
            }
        }
    }

    @Test("too-small buffers and bad scale counts throw KernelError")
    func errors() throws {
        let packed = try PackedFloat32Weights(k: 4, n: 3, values: [Float](repeating: 1, count: 12))
        var out = [Float](repeating: 0, count: 5)
        #expect(throws: KernelError.bufferSize(what: "out", expected: 6, actual: 5)) {
            try [Float](repeating: 1, count: 8).withUnsafeBufferPointer { a in
                try out.withUnsafeMutableBufferPointer { out in try gemmF32(a: a, m: 2, b: packed, out: out) }
            }
        }
        #expect(throws: KernelError.self) {
            _ = try PackedInt8Weights(k: 2, n: 3, values: [Int8](repeating: 1, count: 6), scales: [1, 2])
        }
        #expect(throws: KernelError.self) {
            _ = try PackedFloat32Weights(k: -1, n: 3, values: [Float]())
        }
    }
    @Test("thread pool: many tiny jobs and concurrent submitters give the one-thread bits")
    func poolStress() throws {
        let (m, k, n) = (64, 256, 256)  // ≈ 8 MFLOP: split in two on the spinning pool
        let a = Self.floats(m * k, seed: 60)
        let packed = try PackedFloat32Weights(k: k, n: n, values: Self.floats(k * n, seed: 61))
        @Sendable func product(threads: Int) throws -> [Float] {
            var out = [Float](repeating: 0, count: m * n)
            try a.withUnsafeBufferPointer { a in
                try out.withUnsafeMutableBufferPointer { out in
                    try gemmF32(a: a, m: m, b: packed, out: out, threads: threads)
                }
            }
            return out
        }
        let expected = try product(threads: 1).map(\.bitPattern)
        for _ in 0..<100 { #expect(try product(threads: 2).map(\.bitPattern) == expected) }
        // Idle gaps around the workers' spin limit exercise the sleep / wake hand-off.
        for round in 0..<200 {
            usleep(UInt32(150 + (round * 37) % 200))
            #expect(try product(threads: 2).map(\.bitPattern) == expected)
        }
        // Several submitters at once: one wins the pool, the others fall back to Dispatch.
        let mismatches = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for _ in 0..<10 {
                let same = (try? product(threads: 2).map(\.bitPattern)) == expected
                if !same { mismatches.add(1, ordering: .relaxed) }
            }
        }
        #expect(mismatches.load(ordering: .relaxed) == 0)
    }
}
}  // extension KernelTests
