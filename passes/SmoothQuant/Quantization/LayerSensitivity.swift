import SQIR

/// Each candidate layer alone on its float input: a probe graph holding only the linears
/// (their activations as graph inputs, their outputs as graph outputs), in float and
/// quantized O3 and O1 by the same quantizer, run by the same executor.
final class LayerSensitivity {
    private let probes: [(form: LayerForm, run: Calibrator.Runner)]
    private let outputOf: [String: String]  // layer node → output name
    private let outputs: Set<String>
    private var squaredError: [LayerForm: [String: Double]] = [:]
    private var rowCount: [String: Int] = [:]

    init(layers: [LinearLayer], model: Model, quantizer: W8A8Quantizer, statistics: CalibrationStatistics?,
         replay: SampleReplay) throws {
        var outputOf: [String: String] = [:]
        var probes: [(LayerForm, Calibrator.Runner)] = []
        for form in [LayerForm.float, .perTensorStatic, .perToken] {
            let probe = Self.probeModel(layers, like: model)
            if form != .float {
                var q = quantizer
                q.options.lmHead = true  // every probe output is a graph output
                q.options.exclude = nil
                q.layerPolicies = [:]
                q.floatLayers = [:]
                q.options.policy = form == .perTensorStatic ? .O3 : .O1
                _ = try q.run(on: probe.graph, statistics: statistics)
            }
            probes.append((form, try replay.makeRunner(probe)))
        }
        for layer in layers { outputOf[layer.node.name] = "sq_probe/" + layer.node.name }
        self.probes = probes
        self.outputOf = outputOf
        self.outputs = Set(outputOf.values)
    }

    /// A model whose graph is the linears of `layers` alone (activations and weights keep
    /// their names, so the quantizer's statistics and ranges apply).
    static func probeModel(_ layers: [LinearLayer], like model: Model) -> Model {
        let graph = Graph(name: "sq_probe")
        var inputs: [String: Value] = [:]
        var weights: [String: Value] = [:]
        for layer in layers {
            let x: Value
            if let existing = inputs[layer.activation.name] {
                x = existing
            } else {
                x = Value(name: layer.activation.name, type: layer.activation.type.map { TensorType($0.dtype, nil) })
                inputs[layer.activation.name] = x
                graph.inputs.append(x)
            }
            let w = weights[layer.weight.name] ?? graph.addInitializer(layer.weightTensor, name: layer.weight.name)
            weights[layer.weight.name] = w
            var operands: [Value?] = [x, w]
            if layer.node.isOp("Gemm"), let bias = layer.node.input(2)?.constant {
                operands.append(graph.addInitializer(bias, name: "sq_probe_b/" + layer.node.name))
            }
            let y = Value(name: "sq_probe/" + layer.node.name)
            graph.append(Node(layer.node.opType, domain: layer.node.domain, name: layer.node.name,
                              inputs: operands, outputs: [y], attributes: layer.node.attributes))
            graph.outputs.append(y)
        }
        return Model(graph: graph, irVersion: model.irVersion, opsetImports: model.opsetImports)
    }

    /// Adds one sample: `inputs` are the float model's activations by name. The error of a
    /// layer is averaged over its output rows (tokens), each relative to its own norm, so that
    /// a few massive tokens, whose rows dominate the tensor's norm, do not hide the error of
    /// all the others (a static scale sized for them rounds the other tokens to 0).
    func measure(inputs: [String: Tensor]) throws {
        var reference: [String: [Float]] = [:]
        for (form, run) in probes {
            try run(inputs, outputs) { name, tensor in
                guard outputs.contains(name) else { return }
                let values = tensor.doubleValues().map(Float.init)
                if form == .float {
                    reference[name] = values
                    return
                }
                guard let ref = reference[name], ref.count == values.count else { return }
                let width = Swift.max(tensor.shape.last ?? 1, 1)
                var total = 0.0
                let rows = values.count / width
                for r in 0..<rows {
                    var e = 0.0, norm = 0.0
                    for i in (r * width)..<((r + 1) * width) {
                        let d = Double(values[i]) - Double(ref[i])
                        e += d * d
                        norm += Double(ref[i]) * Double(ref[i])
                    }
                    total += norm > 0 ? e / norm : (e > 0 ? 1 : 0)
                }
                squaredError[form, default: [:]][name, default: 0] += total
                if form == .perTensorStatic { rowCount[name, default: 0] += rows }
            }
        }
    }

    /// Relative errors per layer node.
    func relativeErrors() -> [String: (perTensorStatic: Double, perToken: Double)] {
        var out: [String: (Double, Double)] = [:]
        for (node, output) in outputOf {
            let rows = Double(Swift.max(rowCount[output] ?? 0, 1))
            out[node] = ((squaredError[.perTensorStatic]?[output] ?? 0) / rows, (squaredError[.perToken]?[output] ?? 0) / rows)
        }
        return out
    }
}

extension Model {
    /// A copy whose graph can be rewritten without touching this one (constants are shared:
    /// tensors are values). Graphs with subgraphs (If, Loop) are refused.
    func copy() throws -> Model {
        let graph = Graph(name: self.graph.name)
        var map: [ObjectIdentifier: Value] = [:]
        func copy(_ v: Value) -> Value {
            if let done = map[ObjectIdentifier(v)] { return done }
            let c = Value(name: v.name, type: v.type, constant: v.constant)
            map[ObjectIdentifier(v)] = c
            return c
        }
        graph.inputs = self.graph.inputs.map(copy)
        graph.initializers = self.graph.initializers.map(copy)
        for node in self.graph.nodes {
            guard node.subgraphs.isEmpty else {
                throw IRError(node: node, reason: "quantize{policy=auto} does not handle graphs with subgraphs (If, Loop) yet")
            }
            graph.append(Node(node.opType, domain: node.domain, name: node.name, inputs: node.inputs.map { $0.map(copy) },
                              outputs: node.outputs.map { $0.map(copy) }, attributes: node.attributes))
        }
        graph.outputs = self.graph.outputs.map(copy)
        let model = Model(graph: graph, irVersion: irVersion, opsetImports: opsetImports)
        model.sourcePath = sourcePath
        return model
    }
}
