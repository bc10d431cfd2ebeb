import SQIR

/// What `quantize{policy=auto}` chose (for the run summary, `--json` and `--report`).
public enum AutoPolicyReportKey: PassContextKey {
    public typealias Value = AutoPolicyReport
}

extension Quantize {
    /// The quantizer `run` applies: the options, plus the static ranges of
    /// `calibration=percentile|mse`, the clipped weight ranges of `weight-calibration=mse`,
    /// and `policy=auto`'s per-layer plan (measured here, before the graph changes).
    func prepareQuantizer(model: Model, statistics: CalibrationStatistics?, context: PassContext) throws -> W8A8Quantizer {
        var quantizer = W8A8Quantizer(options: options)
        let graph = model.graph
        let layers = try quantizer.candidateLayers(in: graph)
        if weightCalibration == .mse {
            for layer in layers where quantizer.weightRanges[layer.weight.name] == nil {
                if let range = weightCalibration.perTensorRange(layer) { quantizer.weightRanges[layer.weight.name] = range }
            }
        }
        if options.policy == .O3 && calibration != .minmax {
            var values = layers.map(\.activation.name)
            if options.bmm {
                for node in graph.nodes where isActivationMatMul(node) {
                    values += [node.input(0), node.input(1)].compactMap { $0?.name }
                }
            }
            var seen = Set<String>()
            values = values.filter { seen.insert($0).inserted }
            quantizer.staticRanges = try staticRanges(method: calibration, percentile: percentile, values: values,
                                                      model: model, statistics: statistics, context: context)
        }
        guard auto else { return quantizer }

        guard let replay = SampleReplay(context: context, statistics: statistics) else {
            throw IRError(file: model.sourcePath, reason: "quantize{policy=auto} needs the calibration samples (--calib DIR) to measure the layers; saved statistics (--load-calib) are not enough")
        }
        let resolved = metric != .auto ? metric : (graph.outputs.contains { $0.name == "logits" } ? .kl : .cosine)
        let limit: Double
        switch budget {
        case .auto: limit = resolved.defaultBudget
        case .value(let v): limit = v
        }
        if resolved == .cosine && limit > 1 {
            throw IRError(file: model.sourcePath, reason: "quantize{policy=auto}: a cosine budget is at most 1 (got \(limit))")
        }
        var search = AutoPolicy(metric: resolved, budget: limit, holdout: holdout, output: output)
        search.quantizerStatistics = statistics
        let plan = try search.plan(model: model, layers: layers, quantizer: quantizer, replay: replay, context: context)
        for (node, form) in plan.forms {
            switch form {
            case .perTensorStatic: quantizer.layerPolicies[node] = .O3
            case .perToken: quantizer.layerPolicies[node] = .O1
            case .float: quantizer.floatLayers[node] = "policy=auto: no int8 form meets the budget"
            }
        }
        context[AutoPolicyReportKey.self] = plan.report
        for layer in plan.report.layers {
            context.remark("policy=auto: '\(layer.node)' \(layer.form.rawValue): \(layer.reason)")
        }
        return quantizer
    }
}

extension W8A8Quantizer {
    /// The linear layers `run` quantizes: every one except excluded nodes and, without
    /// `lm-head=true`, the output heads.
    func candidateLayers(in graph: Graph) throws -> [LinearLayer] {
        let excluded: Regex<AnyRegexOutput>?
        do {
            excluded = try options.exclude.map { try Regex($0) }
        } catch {
            throw IRError(reason: "quantize: exclude '\(options.exclude ?? "")' is not a valid regular expression: \(error)")
        }
        let heads = options.lmHead ? [] : Set(Self.outputHeads(in: graph).map(ObjectIdentifier.init))
        return LinearLayer.all(in: graph).filter { layer in
            if let excluded, (try? excluded.firstMatch(in: layer.node.name)) != nil { return false }
            return !heads.contains(ObjectIdentifier(layer.node)) && floatLayers[layer.node.name] == nil
        }
    }
}
