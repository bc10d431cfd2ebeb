import Foundation
import SQIR
import SQPasses

/// `sqopt --passes LIST MODEL [-o OUT]`: load, run the pass pipeline, write the result.
struct OptimizeCommand {
    let driver: Driver

    static let options: [OptionSpec] = [
        .value("--passes", valueName: "LIST", help: "the pipeline, e.g. calibrate,smooth{alpha=0.5},quantize{policy=O3}"),
        .value("--output", "-o", valueName: "OUT", help: "output model (default: beside MODEL, see docs/cli.md)"),
        .value("--calib", valueName: "DIR", help: "calibration samples: test_data_set_*/input_N.pb or folders of INPUT.npy"),
        .value("--policy", valueName: "O1|O2|O3|auto", help: "quantize policy when the pipeline does not set one"),
        .value("--alpha", valueName: "A", help: "smooth migration strength when the pipeline does not set one"),
        .value("--save-calib", valueName: "FILE.json", help: "write the calibration statistics"),
        .value("--load-calib", valueName: "FILE.json", help: "use saved calibration statistics instead of calibrating"),
        .value("--report", valueName: "FILE", help: "smoothing report (.html with SVG plots, or .json)"),
        .flag("--verify", help: "compare the output model with the input on the calibration samples"),
        .flag("--force", help: "overwrite an existing output file"),
        .flag("--allow-noop", help: "write the model even when smooth or quantize found nothing to do"),
        .flag("--external-data", help: "store weights in OUT.data beside the output"),
        .flag("--print-ir", help: "print the final IR (large constants elided)"),
    ] + PipelineFlags.options + [
        .flag("--quiet", "-q", help: "print nothing but errors"),
        .flag("--json", help: "print the summary as JSON"),
    ]

    var help: String {
        """
        USAGE: \(driver.usageLine(for: ""))

        Loads MODEL, runs the pass pipeline over it and writes the result as a standard ONNX
        (QDQ) model. Passes that need calibration statistics (smooth, quantize{policy=O3}) get
        them from an earlier `calibrate`; if there is none, calibration runs first on --calib DIR
        or on the test_data_set_* folders beside MODEL. quantize needs opset 21: on an older
        model, upgrade-opset runs before it. Inserted steps are announced with a note and are
        passes like the others (--time-passes, --print-ir-after, the summary).

        OPTIONS:
        \(formatOptions(Self.options))
        EXAMPLES:
          \(driver.toolName) --passes smooth,quantize model.onnx
          \(driver.toolName) --passes calibrate,smooth{alpha=0.8},quantize{policy=O1} --calib data/ model.onnx -o out.onnx
          \(driver.toolName) --passes canonicalize-norms,fold-constants,dce model.onnx -o clean.onnx --time-passes
        """
    }

    func run(_ args: [String]) throws {
        let parsed = try parseArguments(args, specs: Self.options, command: "optimize")
        let input = try parsed.single("MODEL", command: "optimize")
        var pipeline = try PipelineFlags.pipeline(parsed, registry: driver.registry, command: "optimize", example: "smooth,quantize")
        pipeline = try SmoothQuantDefaults.apply(to: pipeline, policy: parsed.value("--policy"), alpha: parsed.value("--alpha"), registry: driver.registry)

        let output = try parsed.value("--output") ?? defaultOutputPath(for: input, pipeline: pipeline)
        try checkOutputPath(output, input: input, force: parsed.has("--force"), command: "optimize")

        let quiet = parsed.has("--quiet")
        let start = DispatchTime.now().uptimeNanoseconds
        let model = try ModelIO.load(input)
        let sizeBefore = fileSize(input)

        let context = PassContext()
        context.onDiagnostic = PipelineFlags.diagnosticPrinter(parsed, quiet: quiet)
        pipeline = try SmoothQuantDefaults.prepareCalibration(
            pipeline: pipeline, model: model, modelPath: input, parsed: parsed, context: context, registry: driver.registry, quiet: quiet)
        let report = try PipelineFlags.manager(pipeline, registry: driver.registry, parsed: parsed).run(on: model, context: context)

        // A smooth/quantize that did nothing ends the run (exit 1, nothing written) unless
        // --allow-noop: a float model must never look like an int8 one (docs/cli.md).
        let noop = NoopRule.reasons(report: report, context: context, model: model)
        if !noop.isEmpty {
            guard parsed.has("--allow-noop") else { throw NoopRule.refusal(noop, input: input) }
            for line in noop { context.warning(line + " (--allow-noop: writing the model anyway)") }
        }
        try SmoothQuantDefaults.finish(context: context, parsed: parsed)
        if parsed.has("--print-ir") { Console.out(IRPrinter().print(model), terminator: "") }
        try ModelIO.save(model, to: output, externalData: parsed.has("--external-data"))
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9

        let summary = RunSummary(input: input, output: output, pipeline: pipeline.description,
                                 report: report, sizeBefore: sizeBefore, sizeAfter: fileSize(output) + fileSize(output + ".data"),
                                 seconds: seconds, warnings: context.diagnostics.filter { $0.severity == .warning }.count,
                                 target: quantizeTarget(pipeline), autoPolicy: context[AutoPolicyReportKey.self])
        if parsed.has("--json") {
            Console.out(try summary.json())
        } else if !quiet {
            Console.out(summary.text, terminator: "")
        }
        if parsed.has("--verify") {
            try VerifyCommand(driver: driver).verify(reference: input, candidate: output,
                                                       dataDirectory: SmoothQuantDefaults.verificationData(parsed: parsed, modelPath: input),
                                                       layerwise: false, json: false)
        }
    }

    /// The ONNX form the pipeline's `quantize` wrote (its `target` option), for the summary.
    func quantizeTarget(_ pipeline: Pipeline) -> String? {
        guard let element = pipeline.elements.last(where: { $0.passName == "quantize" }) else { return nil }
        return SmoothQuantDefaults.optionText(element, "target", registry: driver.registry)
    }

    /// Without `-o`: beside the input, named after what the pipeline does:
    /// `model.onnx` -> `model.sq-w8a8.onnx` (quantize), `model.sq-smooth.onnx` (smooth only),
    /// `model.sq-opt.onnx` (anything else).
    func defaultOutputPath(for input: String, pipeline: Pipeline) throws -> String {
        let names = Set(pipeline.elements.map(\.passName))
        let suffix = names.contains("quantize") ? "sq-w8a8" : names.contains("smooth") ? "sq-smooth" : "sq-opt"
        let url = URL(fileURLWithPath: input)
        let stem = url.pathExtension == "onnx" ? url.deletingPathExtension().lastPathComponent : url.lastPathComponent
        return url.deletingLastPathComponent().appendingPathComponent("\(stem).\(suffix).onnx").path
    }
}

/// Refuses to write over the input (usage error) or over an existing file without `--force`.
func checkOutputPath(_ output: String, input: String, force: Bool, command: String) throws {
    let a = URL(fileURLWithPath: output).resolvingSymlinksInPath().standardizedFileURL.path
    let b = URL(fileURLWithPath: input).resolvingSymlinksInPath().standardizedFileURL.path
    if a == b {
        throw UsageError(message: "the output '\(output)' is the input model; sqopt never overwrites its input", command: command)
    }
    if FileManager.default.fileExists(atPath: output) && !force {
        throw DriverError("\(output) exists; pass --force to overwrite it, or -o to choose another path")
    }
}

func fileSize(_ path: String) -> Int {
    ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
}

/// What an optimize run did, printed after it (or as JSON with --json).
struct RunSummary: Encodable {
    struct PassLine: Encodable {
        let pass: String
        let milliseconds: Double
        let changed: Bool
        let nodesAdded: Int
        let nodesRemoved: Int
        let counters: [String: Int]
        /// For a step the pass manager inserted (upgrade-opset): the pass that needed it.
        let requiredBy: String?
    }
    let input: String
    let output: String
    let pipeline: String
    let passes: [PassLine]
    let bytesBefore: Int
    let bytesAfter: Int
    let seconds: Double
    let warnings: Int
    /// `quantize`'s target (onnxruntime | qdq) when the pipeline quantized.
    let target: String?
    /// What `quantize{policy=auto}` chose per layer, and why.
    let autoPolicy: AutoPolicyReport?

    init(input: String, output: String, pipeline: String, report: PipelineReport, sizeBefore: Int, sizeAfter: Int, seconds: Double,
         warnings: Int, target: String? = nil, autoPolicy: AutoPolicyReport? = nil) {
        self.input = input
        self.output = output
        self.pipeline = pipeline
        self.passes = report.records.map { r in
            PassLine(pass: r.pass, milliseconds: r.seconds * 1000, changed: r.result.changed,
                     nodesAdded: r.result.statistics.nodesAdded, nodesRemoved: r.result.statistics.nodesRemoved,
                     counters: Dictionary(r.result.statistics.counters.map { ($0.name, $0.value) }, uniquingKeysWith: +),
                     requiredBy: r.requiredBy)
        }
        self.bytesBefore = sizeBefore
        self.bytesAfter = sizeAfter
        self.seconds = seconds
        self.warnings = warnings
        self.target = target
        self.autoPolicy = autoPolicy
    }

    var text: String {
        var s = "pipeline: \(pipeline)\n"
        for p in passes {
            s += "  " + p.pass.padding(toLength: 20, withPad: " ", startingAt: 0)
            s += String(format: "%9.1f ms  ", p.milliseconds)
            s += p.changed ? "+\(p.nodesAdded) -\(p.nodesRemoved) nodes" : "unchanged"
            if !p.counters.isEmpty {
                s += "; " + p.counters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")
            }
            if let requiredBy = p.requiredBy { s += " (inserted: '\(requiredBy)' needs it)" }
            s += "\n"
        }
        if let autoPolicy { s += autoPolicy.text }
        s += "model size: \(formatBytes(bytesBefore)) -> \(formatBytes(bytesAfter))\n"
        switch target {
        case "onnxruntime"?:
            s += "target: onnxruntime (uint8 activations, zero point 128: onnxruntime's u8×s8 kernels; quantize{target=qdq} writes portable int8 QDQ for TensorRT)\n"
        case let other?:
            s += "target: \(other) (portable int8 QDQ; quantize{target=onnxruntime} runs faster in onnxruntime)\n"
        case nil:
            break
        }
        s += "wrote \(output) in " + String(format: "%.2f s", seconds)
        s += warnings > 0 ? " (\(warnings) warning\(warnings == 1 ? "" : "s"))\n" : "\n"
        return s
    }

    func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }
}
