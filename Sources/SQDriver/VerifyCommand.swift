import Foundation
import SQIR
import SQRuntime
import SQPasses

/// `sqopt verify REFERENCE CANDIDATE --data DIR [--layerwise] [--json]`: runs both models
/// over the samples and reports per-output error metrics (and per-layer with --layerwise).
struct VerifyCommand {
    let driver: Driver

    static let options: [OptionSpec] = [
        .value("--data", valueName: "DIR", help: "samples: a test_data_set_N folder, or a folder of them"),
        .flag("--layerwise", help: "also compare every quantized MatMul output matched by name, worst first"),
        .flag("--json", help: "print the metrics as JSON"),
    ]

    var help: String {
        """
        USAGE: \(driver.usageLine(for: "verify"))

        Runs REFERENCE and CANDIDATE with sqopt's interpreter on every sample and prints, per
        output: cosine similarity, relative L2 error, max abs error, SNR (dB), and for logits
        top-1 agreement and KL(reference || candidate). Metrics are worst-case over samples
        (top-1 and KL are averaged).

        OPTIONS:
        \(formatOptions(Self.options))
        """
    }

    func run(_ args: [String]) throws {
        let parsed = try parseArguments(args, specs: Self.options, command: "verify")
        guard parsed.positionals.count == 2 else {
            throw UsageError(message: "verify takes REFERENCE and CANDIDATE models", command: "verify")
        }
        guard let data = parsed.value("--data") else {
            throw UsageError(message: "no --data DIR given", command: "verify")
        }
        try verify(reference: parsed.positionals[0], candidate: parsed.positionals[1], dataDirectory: data,
                   layerwise: parsed.has("--layerwise"), json: parsed.has("--json"))
    }

    struct Report: Encodable {
        let samples: Int
        let outputs: [Comparison]
        let layers: [Comparison]
    }

    func verify(reference: String, candidate: String, dataDirectory: String, layerwise: Bool, json: Bool) throws {
        let refModel = try ModelIO.load(reference)
        let candModel = try ModelIO.load(candidate)

        let samples = try SampleLoader.open(dataDirectory, model: refModel)

        // Layer-wise: outputs of MatMul/Gemm nodes present under the same name in both models.
        var layerNames: Set<String> = []
        if layerwise {
            func matmulOutputs(_ m: Model) -> Set<String> {
                Set(m.graph.nodes.filter { $0.isOp("MatMul") || $0.isOp("Gemm") || $0.isOp("MatMulInteger") }
                    .compactMap { $0.output(0)?.name })
            }
            layerNames = matmulOutputs(refModel).intersection(matmulOutputs(candModel))
        }
        // Fusions (bias Add into the int8 kernel) must not hide the compared MatMul outputs.
        let refPlan = try ExecutionPlan(model: refModel, options: PlanOptions(observable: layerNames))
        let candPlan = try ExecutionPlan(model: candModel, options: PlanOptions(observable: layerNames))

        var perOutput: [String: [Comparison]] = [:]
        var perLayer: [String: [Comparison]] = [:]
        for index in 0..<samples.count {
            let inputs = try samples.sample(at: index)
            try validateSample(inputs, graphInputs: SampleLoader.runtimeInputs(refModel), location: samples.location(of: index))
            var refLayers: [String: Tensor] = [:]
            let refOut = try refPlan.run(inputs: inputs, observe: layerwise ? layerNames : [], observer: layerwise ? { refLayers[$0] = $1 } : nil)
            var candLayers: [String: Tensor] = [:]
            let candOut = try candPlan.run(inputs: inputs, observe: layerwise ? layerNames : [], observer: layerwise ? { candLayers[$0] = $1 } : nil)
            for name in refPlan.outputNames {
                guard let r = refOut[name] else { continue }
                guard let c = candOut[name] else {
                    throw DriverError("\(candidate): has no output named '\(name)'")
                }
                let logits = name.lowercased().contains("logits")
                perOutput[name, default: []].append(try Comparison.compare(name: name, reference: r, candidate: c, logits: logits))
            }
            for name in layerNames {
                if let r = refLayers[name], let c = candLayers[name], r.shape == c.shape {
                    perLayer[name, default: []].append(try Comparison.compare(name: name, reference: r, candidate: c, logits: false))
                }
            }
        }
        let outputs = refPlan.outputNames.compactMap { perOutput[$0].flatMap(Comparison.combine) }
        let layers = perLayer.values.compactMap(Comparison.combine).sorted { $0.cosine < $1.cosine }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
            Console.out(String(decoding: try encoder.encode(Report(samples: samples.count, outputs: outputs, layers: layers)), as: UTF8.self))
            return
        }
        Console.out("verify: \(candidate) against \(reference) on \(samples.count) sample(s)")
        for c in outputs { Console.out("  " + c.row) }
        if layerwise {
            Console.out("layer-wise (\(layers.count) MatMul outputs, worst first):")
            for c in layers { Console.out("  " + c.row) }
        }
    }
}
