import Foundation
import SQIR

/// `quantize{policy=…}`: one of SmoothQuant's levels for every layer, or `auto`, a per-layer
/// plan measured on the calibration samples (`AutoPolicy`).
public enum QuantizeLevel: String, Sendable, CaseIterable, PassOptionChoice {
    case O1, O2, O3, auto

    /// The fixed level, nil for `auto`.
    public var fixed: QuantPolicy? { QuantPolicy(rawValue: rawValue) }
}

/// What `policy=auto`'s budget is measured on, graph output against float graph output.
public enum AutoMetric: String, Sendable, CaseIterable, Codable, PassOptionChoice {
    /// `kl` when the model has an output named `logits` (a language model), else `cosine`.
    case auto
    /// Mean KL(float ‖ quantized) of the softmax over the last axis of the first output.
    case kl
    /// Mean cosine similarity of the rows (last axis) of every float output; the worst output counts.
    case cosine

    /// The budget used when `budget=auto`: KL 0.01 nats, cosine 0.999.
    var defaultBudget: Double { self == .kl ? 0.01 : 0.999 }

    /// True when `measured` is within `budget` (KL at most, cosine at least).
    func meets(_ measured: Double, _ budget: Double) -> Bool { self == .kl ? measured <= budget : measured >= budget }

    /// True when `a` is more accurate than `b`.
    func better(_ a: Double, than b: Double) -> Bool { self == .kl ? a < b : a > b }

    var comparison: String { self == .kl ? "≤" : "≥" }
}

/// `budget=auto` or a number (the metric's unit: KL in nats, or a cosine).
public enum AutoBudget: PassOptionValue, Equatable {
    case auto
    case value(Double)

    public static var optionTypeName: String { "float|auto" }
    public init?(optionText: String) {
        if optionText == "auto" { self = .auto; return }
        guard let v = Double(optionText), v.isFinite, v >= 0 else { return nil }
        self = .value(v)
    }
    public var optionText: String {
        switch self {
        case .auto: return "auto"
        case .value(let v): return v.description
        }
    }
}

/// A linear layer's form in a `policy=auto` plan, fastest first.
public enum LayerForm: String, Sendable, Codable, CaseIterable {
    /// O3: per-tensor static activation scale (the fastest in onnxruntime and TensorRT).
    case perTensorStatic = "O3"
    /// O1: per-token dynamic activation scales.
    case perToken = "O1"
    /// Not quantized.
    case float
}

/// What `policy=auto` chose and why (`--json`, the run summary, `--report FILE.html`).
public struct AutoPolicyReport: Codable, Sendable, Equatable {
    public struct Layer: Codable, Sendable, Equatable {
        public var node: String
        public var form: LayerForm
        /// Multiply-accumulates per token (K · N).
        public var macs: Int
        /// Relative output error of the layer alone on float inputs, quantized per-tensor static
        /// and per token: the mean over output rows (tokens) of ‖Q(x)·Q(W) − x·W‖² / ‖x·W‖².
        public var staticError: Double
        public var perTokenError: Double
        public var reason: String
    }

    /// One plan measured end to end.
    public struct Candidate: Codable, Sendable, Equatable {
        /// Steps taken down the demotion order (0 = every layer static).
        public var steps: Int
        public var perTensorStatic: Int
        public var perToken: Int
        public var float: Int
        public var measured: Double
    }

    public var metric: AutoMetric
    public var budget: Double
    /// The chosen plan's metric on the evaluation samples.
    public var measured: Double
    /// Samples the layer errors and the budget were measured on.
    public var sensitivitySamples: Int
    public var evaluationSamples: Int
    /// Share of the quantizable linear layers' MACs with static per-tensor activations.
    public var staticMACFraction: Double
    public var layers: [Layer]
    public var candidates: [Candidate]

    /// One line per layer and a summary, for the run's text output.
    public var text: String {
        let counts = Dictionary(grouping: layers, by: \.form).mapValues(\.count)
        var s = String(format: "policy=auto: %d O3, %d O1, %d float; %.1f%% of linear MACs static; %@ %.5g (budget %@ %.5g) on %d sample(s), %d plan(s) measured\n",
                       counts[.perTensorStatic] ?? 0, counts[.perToken] ?? 0, counts[.float] ?? 0, 100 * staticMACFraction,
                       metric.rawValue, measured, metric.comparison, budget, evaluationSamples, candidates.count)
        for layer in layers {
            s += "  " + layer.form.rawValue.padding(toLength: 6, withPad: " ", startingAt: 0) + layer.node
                + String(format: "  (error O3 %.3g, O1 %.3g): ", layer.staticError, layer.perTokenError) + layer.reason + "\n"
        }
        return s
    }
}

/// `quantize{policy=auto}`: per linear layer the fastest form — O3 (static per-tensor), else O1
/// (per token), else float — such that the whole model stays within a budget on the
/// calibration samples.
///
/// 1. Sensitivity: every candidate layer alone, on the float model's own inputs to it (one
///    float run per sample), quantized O3 and O1 exactly as `quantize` writes it (the same
///    `W8A8Quantizer`, run by the same executor): relative output error of each form.
/// 2. Order: a fixed demotion order — repeatedly the layer whose current form has the largest
///    error moves one step (O3 → O1, or → float when O1 is no better; O1 → float), ties in
///    node order. Plan k = the first k steps; plans are nested, each more float than the last.
/// 3. Search: the smallest k whose model, quantized in full and run end to end, meets the
///    budget on the evaluation samples (k = 0, 1, 2, 4, … then bisection; each plan measured
///    at most once). The chosen plan is thus verified end to end before anything is written.
///    The plan with every layer float is not a plan: when no other meets the budget, the
///    search fails naming the closest plan measured.
/// Deterministic: the same model, samples and options give the same plan.
struct AutoPolicy {
    var metric: AutoMetric
    var budget: Double
    /// The last `holdout` samples are used only to measure the budget (0: all samples do both).
    var holdout: Int
    /// Output whose metric counts (empty: every float output for cosine, the first for KL).
    var output: String

    struct Plan {
        var forms: [String: LayerForm]
        var report: AutoPolicyReport
    }

    /// Builds the plan for `layers` (the linears `quantize` takes) of `model`, whose graph is
    /// the one about to be quantized; `quantizer` carries the options and static ranges.
    func plan(model: Model, layers: [LinearLayer], quantizer: W8A8Quantizer, replay: SampleReplay,
              context: PassContext) throws -> Plan {
        guard !layers.isEmpty else {
            return Plan(forms: [:], report: AutoPolicyReport(metric: metric, budget: budget, measured: 0, sensitivitySamples: 0,
                                                             evaluationSamples: 0, staticMACFraction: 0, layers: [], candidates: []))
        }
        let total = replay.samples.count
        guard holdout < total else {
            throw IRError(file: model.sourcePath, reason: "quantize{policy=auto}: holdout=\(holdout) leaves no sample to measure layers on (\(total) sample(s))")
        }
        let sensitivityIndices = 0..<(holdout > 0 ? Swift.min(replay.count, total - holdout) : replay.count)
        let evaluationIndices = holdout > 0 ? (total - holdout)..<total : 0..<replay.count
        let outputs = try metricOutputs(model.graph)

        // 1. Float run: linear inputs for the sensitivity samples, outputs for the evaluation ones.
        let sensitivity = try LayerSensitivity(layers: layers, model: model, quantizer: quantizer,
                                               statistics: quantizerStatistics, replay: replay)
        var reference: [Int: [String: Tensor]] = [:]
        var captured: [String: Tensor] = [:]
        let inputNames = Set(layers.map(\.activation.name))
        try replay.forEachSample(of: model, indices: 0..<Swift.max(sensitivityIndices.upperBound, evaluationIndices.upperBound),
                                 observe: inputNames.union(outputs)) { index, name, tensor in
            if evaluationIndices.contains(index) && outputs.contains(name) { reference[index, default: [:]][name] = tensor }
            if sensitivityIndices.contains(index) && inputNames.contains(name) { captured[name] = tensor }
        } afterSample: { index in
            if sensitivityIndices.contains(index) { try sensitivity.measure(inputs: captured) }
            captured = [:]
        }
        let errors = sensitivity.relativeErrors()

        // 2. The demotion order.
        var steps: [(node: String, form: LayerForm)] = []
        var keyed: [(key: Double, order: Int, node: String, form: LayerForm)] = []
        for (order, layer) in layers.enumerated() {
            let e = errors[layer.node.name] ?? (0, 0)
            if e.perToken < e.perTensorStatic {
                keyed.append((e.perTensorStatic, 2 * order, layer.node.name, .perToken))
                keyed.append((e.perToken, 2 * order + 1, layer.node.name, .float))
            } else {
                keyed.append((e.perTensorStatic, 2 * order, layer.node.name, .float))
            }
        }
        keyed.sort { $0.key != $1.key ? $0.key > $1.key : $0.order < $1.order }
        steps = keyed.map { ($0.node, $0.form) }
        func forms(after k: Int) -> [String: LayerForm] {
            var f = Dictionary(uniqueKeysWithValues: layers.map { ($0.node.name, LayerForm.perTensorStatic) })
            for step in steps.prefix(k) { f[step.node] = step.form }
            return f
        }

        // 3. The search over k in 0 ..< steps.count (steps.count = every layer float).
        var measured: [Int: Double] = [:]
        func measure(_ k: Int) throws -> Double {
            if let m = measured[k] { return m }
            let m = try evaluate(forms: forms(after: k), model: model, quantizer: quantizer, replay: replay,
                                 indices: evaluationIndices, reference: reference, outputs: outputs)
            measured[k] = m
            context.remark("policy=auto: plan \(k) (\(describe(forms(after: k)))) → \(metric.rawValue) \(m)")
            return m
        }
        let last = steps.count - 1
        var low = -1, high: Int? = nil  // plans ≤ low fail; high meets the budget
        var probe = 0
        while true {
            if metric.meets(try measure(probe), budget) { high = probe; break }
            low = probe
            if probe == last { break }
            probe = Swift.min(Swift.max(probe * 2, 1), last)
        }
        guard var chosen = high else {
            let best = measured.sorted { metric.better($0.value, than: $1.value) || ($0.value == $1.value && $0.key < $1.key) }.first
            let closest = best.map { "plan \($0.key) (\(describe(forms(after: $0.key)))) reaches \(metric.rawValue) \($0.value)" } ?? "none measured"
            throw IRError(file: model.sourcePath, reason: "quantize{policy=auto}: no plan meets the budget \(metric.rawValue) \(metric.comparison) \(budget) on \(evaluationIndices.count) sample(s); the closest, \(closest). Loosen budget= or quantize fewer layers (exclude=); nothing was written")
        }
        while chosen - low > 1 {
            let mid = (low + chosen) / 2
            if metric.meets(try measure(mid), budget) { chosen = mid } else { low = mid }
        }

        // The report.
        let final = forms(after: chosen)
        let demotedAt = Dictionary(steps.prefix(chosen).enumerated().map { ($1.node, $0) }, uniquingKeysWith: { _, b in b })
        var reportLayers: [AutoPolicyReport.Layer] = []
        var staticMACs = 0, allMACs = 0
        for layer in layers {
            let name = layer.node.name
            let form = final[name] ?? .perTensorStatic
            let e = errors[name] ?? (0, 0)
            let macs = layer.inputChannels * layer.outputChannels
            allMACs += macs
            if form == .perTensorStatic { staticMACs += macs }
            let reason: String
            switch form {
            case .perTensorStatic:
                reason = "static holds: the plan with it static meets the budget"
            case .perToken:
                reason = "static error too large (demotion \(demotedAt[name].map { "\($0 + 1)" } ?? "?") of \(chosen) the budget needed); per token is \(format(e.perToken))"
            case .float:
                reason = e.perToken < e.perTensorStatic
                    ? "per-token error \(format(e.perToken)) still too large for the budget"
                    : "per token (\(format(e.perToken))) is no better than static (\(format(e.perTensorStatic)))"
            }
            reportLayers.append(AutoPolicyReport.Layer(node: name, form: form, macs: macs, staticError: e.perTensorStatic,
                                                       perTokenError: e.perToken, reason: reason))
        }
        let candidates = measured.keys.sorted().map { k -> AutoPolicyReport.Candidate in
            let f = forms(after: k).values
            return AutoPolicyReport.Candidate(steps: k, perTensorStatic: f.filter { $0 == .perTensorStatic }.count,
                                              perToken: f.filter { $0 == .perToken }.count,
                                              float: f.filter { $0 == .float }.count, measured: measured[k] ?? 0)
        }
        let report = AutoPolicyReport(metric: metric, budget: budget, measured: measured[chosen] ?? 0,
                                      sensitivitySamples: sensitivityIndices.count, evaluationSamples: evaluationIndices.count,
                                      staticMACFraction: allMACs > 0 ? Double(staticMACs) / Double(allMACs) : 0,
                                      layers: reportLayers, candidates: candidates)
        return Plan(forms: final, report: report)
    }

    private func format(_ x: Double) -> String { String(format: "%.3g", x) }

    private func describe(_ forms: [String: LayerForm]) -> String {
        let c = Dictionary(grouping: forms.values, by: { $0 }).mapValues(\.count)
        return "\(c[.perTensorStatic] ?? 0) O3, \(c[.perToken] ?? 0) O1, \(c[.float] ?? 0) float"
    }

    /// The graph outputs the metric reads.
    private func metricOutputs(_ graph: Graph) throws -> Set<String> {
        if !output.isEmpty {
            guard graph.outputs.contains(where: { $0.name == output }) else {
                throw IRError(reason: "quantize{policy=auto}: output '\(output)' is not a graph output (outputs: \(graph.outputs.map(\.name).joined(separator: ", ")))")
            }
            return [output]
        }
        if metric == .kl, let first = graph.outputs.first { return [first.name] }
        return Set(graph.outputs.map(\.name))
    }

    /// The metric of `forms` on `indices`: a copy of the graph quantized with the plan, run end
    /// to end and compared with the float outputs.
    private func evaluate(forms: [String: LayerForm], model: Model, quantizer: W8A8Quantizer, replay: SampleReplay,
                          indices: Range<Int>, reference: [Int: [String: Tensor]], outputs: Set<String>) throws -> Double {
        let copy = try model.copy()
        var q = quantizer
        q.layerPolicies = [:]
        q.floatLayers = [:]
        for (node, form) in forms {
            switch form {
            case .perTensorStatic: q.layerPolicies[node] = .O3
            case .perToken: q.layerPolicies[node] = .O1
            case .float: q.floatLayers[node] = "policy=auto: float"
            }
        }
        _ = try q.run(on: copy.graph, statistics: quantizerStatistics)
        var sums: [String: (total: Double, rows: Int)] = [:]
        try replay.forEachSample(of: copy, indices: indices, observe: outputs) { index, name, tensor in
            guard let ref = reference[index]?[name] else { return }
            let (total, rows) = compare(ref, tensor)
            sums[name, default: (0, 0)].total += total
            sums[name, default: (0, 0)].rows += rows
        }
        let perOutput = sums.values.map { $0.rows > 0 ? $0.total / Double($0.rows) : (metric == .kl ? 0 : 1) }
        return metric == .kl ? (perOutput.max() ?? 0) : (perOutput.min() ?? 1)
    }

    /// The statistics the quantizer reads for static scales (set by `quantize`).
    var quantizerStatistics: CalibrationStatistics?

    /// Sum over rows of the last axis of KL(ref ‖ candidate) or cosine, and the row count.
    private func compare(_ ref: Tensor, _ candidate: Tensor) -> (Double, Int) {
        let a = ref.doubleValues(), b = candidate.doubleValues()
        let width = Swift.max(ref.shape.last ?? 1, 1)
        guard a.count == b.count, a.count % width == 0 else { return (metric == .kl ? .infinity : 0, 1) }
        var total = 0.0
        let rows = a.count / width
        for r in 0..<rows {
            let range = (r * width)..<((r + 1) * width)
            if metric == .kl {
                let p = logSoftmax(a[range]), q = logSoftmax(b[range])
                var kl = 0.0
                for i in 0..<width { kl += exp(p[i]) * (p[i] - q[i]) }
                total += Swift.max(kl, 0)
            } else {
                var dot = 0.0, na = 0.0, nb = 0.0
                for i in range { dot += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i] }
                total += na > 0 && nb > 0 ? dot / (na.squareRoot() * nb.squareRoot()) : (na == nb ? 1 : 0)
            }
        }
        return (total, rows)
    }

    private func logSoftmax(_ x: ArraySlice<Double>) -> [Double] {
        let m = x.max() ?? 0
        let shifted = x.map { $0 - m }
        let log = Foundation.log(shifted.reduce(0) { $0 + exp($1) })
        return shifted.map { $0 - log }
    }
}
