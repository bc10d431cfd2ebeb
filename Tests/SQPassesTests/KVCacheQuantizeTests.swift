import Foundation
import SQIR
import SQONNX
import Testing
@testable import SQPasses

/// models/tiny-llama-kv (optimum layout, tools/build_smollm2_kv.py --tiny): `quantize` leaves
/// the K/V cache path float and says so in a remark.
@Suite struct KVCacheQuantizeTests {
    @Test func cacheStaysFloatWithARemark() throws {
        let model = try SmoothQuantFixtures.load(SmoothQuantFixtures.model("tiny-llama-kv"))
        let context = PassContext()
        try PassManager(pipeline: "quantize{policy=O1}", registry: testRegistry).run(on: model, context: context)
        let remarks = context.diagnostics(of: "quantize").map(\.description)
        #expect(remarks.contains { $0.contains("KV cache: 4 present output(s)") && $0.contains("stay float") }, "\(remarks)")
        for output in model.graph.outputs where output.name.hasPrefix("present.") {
            let concat = try #require(output.producer)
            #expect(concat.isOp("Concat"))
            for input in concat.inputs {
                #expect(input?.producer.map { $0.opType != "DequantizeLinear" && $0.opType != "QuantizeLinear" } ?? true,
                        "\(output.name) reads \(input?.name ?? "-")")
            }
        }
        #expect(model.graph.nodes.contains { $0.opType == "DequantizeLinear" })
    }
}
