import Testing
import SQIR
@testable import SQPasses

/// `LinearCoverage`: what each MatMul/Gemm is for `quantize` (issue 17), on IR text.
@Suite struct LinearCoverageTests {
    static let graph = """
        graph g(%x: f32[2,4]) -> (%a: f32[2,2], %b: f32[2,2], %c: f32[2,2], %d: f32[2,2], %e: f32[2,2], %f: f32[2,2], %s: f32[2,2]) {
          %w = const f32[4,2] [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
          %q = const i8[4,2] [1, 2, 3, 4, 5, 6, 7, -8]
          %qt = const i8[2,4] [1, 2, 3, 4, 5, 6, 7, -8]
          %scale = const f32[] [0.5]
          %h = const f16[4,2] [0x3c00, 0x4000, 0x3c00, 0x4000, 0x3c00, 0x4000, 0x3c00, 0x4000]
          %a = MatMul(%x, %w) @float
          %dq = DequantizeLinear(%q, %scale)
          %b = MatMul(%x, %dq) @dq
          %qtc = Cast(%qt) {to = 1}
          %qts = Mul(%scale, %qtc)
          %qtt = Transpose(%qts) {perm = [1, 0]}
          %c = MatMul(%x, %qtt) @castmul_transposed
          %hc = Cast(%h) {to = 1}
          %d = MatMul(%x, %hc) @f16_cast
          %xq = QuantizeLinear(%x, %scale)
          %xdq = DequantizeLinear(%xq, %scale)
          %e = MatMul(%xdq, %dq) @qdq
          %f = Gemm(%x, %w) @gemm
          %xt = Transpose(%x) {perm = [1, 0]}
          %s0 = MatMul(%xt, %x)
          %s1 = MatMul(%x, %xt) @attention
          %s = Identity(%a)
          return %a, %b, %c, %d, %e, %f, %s
        }
        """

    @Test func classifiesEveryForm() throws {
        let model = try IRParser().parseModel(Self.graph)
        let coverage = LinearCoverage(model.graph)
        #expect(coverage.floatLinears == ["float", "gemm"])
        #expect(coverage.unsupportedFloat == [.float16: ["f16_cast"]])
        #expect(coverage.quantized.map(\.node) == ["dq", "castmul_transposed", "qdq"])
        #expect(coverage.quantized.map(\.form) == [.dequantizeLinear, .castMul, .dequantizeLinear])
        #expect(coverage.weightOnlyInt8.map(\.node) == ["dq", "castmul_transposed"], "qdq's activation is quantized too")
        #expect(coverage.activationMatMuls.count == 2)
    }

    /// Operands computed from constants only are weights, not attention operands.
    @Test func constantDerivedOperandsAreNoActivations() throws {
        let model = try IRParser().parseModel(Self.graph)
        func node(_ name: String) throws -> Node { try #require(model.graph.nodes.first { $0.name == name }) }
        #expect(!isActivationMatMul(try node("castmul_transposed")))
        #expect(!isActivationMatMul(try node("f16_cast")))
        #expect(isActivationMatMul(try node("attention")))
    }

    @Test func reasonsNameTheDTypeAndTheNodes() throws {
        let model = try IRParser().parseModel(Self.graph)
        let reasons = LinearCoverage(model.graph).quantizeNoopReasons()
        #expect(reasons.count == 2, "\(reasons)")
        #expect(reasons.first?.hasPrefix("weights already quantized: 3 MatMul/Gemm read int8 weights (Cast+Mul, DequantizeLinear): 'dq', 'castmul_transposed', 'qdq'") == true, "\(reasons)")
        #expect(reasons.last?.hasPrefix("float type float16 is not supported yet: 1 MatMul/Gemm have float16 weights ('f16_cast')") == true, "\(reasons)")
    }
}
