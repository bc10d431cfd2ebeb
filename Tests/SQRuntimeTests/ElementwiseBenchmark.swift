import Foundation
import SQIR
@testable import SQRuntime
import Testing

/// Nanoseconds per element of the elementwise kernels on transformer-sized tensors
/// (a benchmark; runs with SQOPT_BENCH=1).
@Suite struct ElementwiseBenchmark {
    @Test(.enabled(if: InterpreterBenchmark.enabled)) func perElementCost() throws {
        let pool = BufferPool(maxTensorBytes: 1 << 32)
        let shape = [8, 128, 384]
        let n = shape.reduce(1, *)
        let x = floats(shape, (0..<n).map { Float($0 % 97) * 0.01 })
        let y = floats(shape, (0..<n).map { Float($0 % 89) * 0.02 })
        let bias = floats([384], (0..<384).map { Float($0) })
        let column = floats([8, 128, 1], (0..<1024).map { Float($0) })
        let scores = floats([8, 12, 128, 128], (0..<(8 * 12 * 128 * 128)).map { Float($0 % 113) * 0.01 })
        func time(_ label: String, _ count: Int, _ body: () throws -> Void) rethrows {
            let t = try InterpreterBenchmark.median(9, body)
            print(String(format: "  %-28@ %7.3f ms  %6.2f ns/element", label, t * 1e3, t * 1e9 / Double(count)))
        }
        var baseline = [Float](repeating: 0, count: n)
        let xs = x.elements(as: Float.self), ys = y.elements(as: Float.self)
        time("plain Swift loop add", n) { for i in 0..<n { baseline[i] = xs[i] + ys[i] } }
        try time("Add same shape", n) { _ = try arithmetic(.add, x, y, pool) }
        try time("Add bias [384]", n) { _ = try arithmetic(.add, x, bias, pool) }
        try time("Sub column [8,128,1]", n) { _ = try arithmetic(.subtract, x, column, pool) }
        try time("Mul scalar", n) { _ = try arithmetic(.multiply, x, Tensor(scalar: Float(2)), pool) }
        let unary: [(String, UnaryOp)] = [("Erf", .erf), ("Sigmoid", .sigmoid), ("Exp", .exp), ("Sqrt", .sqrt), ("Tanh", .tanh)]
        for (name, op) in unary {
            try time(name, n) { _ = try UnaryKernel(op: op).run([x], pool) }
        }
        try time("Softmax [8,12,128,128]", scores.count) { _ = try SoftmaxKernel(axis: -1, flattenTail: false, logarithm: false).run([scores], pool) }
        try time("LayerNormalization", n) { _ = try NormalizationKernel(axis: -1, epsilon: 1e-5, rms: false).run([x, bias, bias], pool) }
    }
}
