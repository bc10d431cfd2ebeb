import Foundation
import SQIR
import SQPasses

/// The CLI's SmoothQuant conveniences around the pass pipeline: `--policy`/`--alpha`
/// shortcuts, implicit calibration (issue: the bare `sqopt --passes smooth,quantize MODEL`),
/// `--load-calib`/`--save-calib`, `--report`, and statistics merging.
enum SmoothQuantDefaults {
    /// True when the element's pass declares that it reads calibration statistics on `model`
    /// (`Pass.requirements(for:)`: smooth, quantize{policy=O3}).
    static func needsStatistics(_ element: PipelineElement, model: Model, registry: PassRegistry) throws -> Bool {
        try registry.makePass(named: element.passName, options: element.options)
            .requirements(for: model).contains(.calibrationStatistics)
    }

    /// The option's text as given, else its declared default.
    static func optionText(_ element: PipelineElement, _ name: String, registry: PassRegistry) -> String? {
        if let given = element.options.given.first(where: { $0.name == name }) { return given.value.optionText }
        return registry.info(named: element.passName)?.option(named: name)?.defaultText
    }

    /// Applies `--policy` to `quantize` and `--alpha` to `smooth` where the pipeline text did
    /// not set them.
    static func apply(to pipeline: Pipeline, policy: String?, alpha: String?, registry: PassRegistry) throws -> Pipeline {
        var out = pipeline
        for (pass, option, text) in [("quantize", "policy", policy), ("smooth", "alpha", alpha)] {
            guard let text else { continue }
            guard let declaration = registry.info(named: pass)?.option(named: option), declaration.parseValue(text) != nil else {
                throw UsageError(message: "invalid --\(option) '\(text)' (expected \(registry.info(named: pass)?.option(named: option)?.typeName ?? "a value"))", command: "optimize")
            }
            if !pipeline.elements.contains(where: { $0.passName == pass }) {
                throw UsageError(message: "--\(option) is given but the pipeline has no '\(pass)' pass", command: "optimize")
            }
        }
        for (i, element) in pipeline.elements.enumerated() {
            var options = element.options
            for (pass, option, text) in [("quantize", "policy", policy), ("smooth", "alpha", alpha)] {
                guard element.passName == pass, let text, !options.isGiven(option) else { continue }
                guard let declaration = registry.info(named: pass)?.option(named: option),
                      let value = declaration.parseValue(text) else {
                    throw UsageError(message: "invalid --\(option) '\(text)' (expected \(registry.info(named: pass)?.option(named: option)?.typeName ?? "a value"))", command: "optimize")
                }
                options.set(option, value)
            }
            out.elements[i] = PipelineElement(passName: element.passName, options: options)
        }
        return out
    }

    /// `test_data_set_*` folders beside the model (the ONNX model-zoo layout), if any.
    static func dataBeside(_ modelPath: String) -> String? {
        let dir = URL(fileURLWithPath: modelPath).deletingLastPathComponent().path
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return entries.contains { $0.hasPrefix("test_data_set_") } ? dir : nil
    }

    /// Makes calibration possible: loads `--load-calib`, or inserts the pass providing
    /// statistics (`calibrate`) before the first pass requiring them, with a note, and hands
    /// the samples to the context.
    static func prepareCalibration(pipeline: Pipeline, model: Model, modelPath: String, parsed: ParsedArguments,
                                   context: PassContext, registry: PassRegistry, quiet: Bool) throws -> Pipeline {
        var pipeline = pipeline
        func providesStatistics(_ element: PipelineElement) -> Bool { registry.provides(element.passName, .calibrationStatistics) }
        if let file = parsed.value("--load-calib") {
            let fingerprint = ModelFingerprint.of(model.graph)
            context[CalibrationStatisticsKey.self] = try CalibrationStatistics.load(from: file, expectingFingerprint: fingerprint)
        } else if let first = try pipeline.elements.firstIndex(where: { try needsStatistics($0, model: model, registry: registry) }),
                  !pipeline.elements[..<first].contains(where: providesStatistics),
                  let calibrate = registry.provider(for: .calibrationStatistics) {
            pipeline.elements.insert(calibrate, at: first)
            context.note("running \(calibrate) first: '\(pipeline.elements[first + 1].passName)' needs \(PassRequirement.calibrationStatistics)")
        }
        guard pipeline.elements.contains(where: providesStatistics) else { return pipeline }

        guard let dataDir = parsed.value("--calib") ?? dataBeside(modelPath) else {
            throw DriverError("""
                calibration data needed but none found: pass --calib DIR (test_data_set_*/input_N.pb folders \
                or one folder per sample of INPUT_NAME.npy), put test_data_set_* folders beside \(modelPath), \
                or give saved statistics with --load-calib FILE.json
                """)
        }
        context[CalibrationSamplesKey.self] = try SampleLoader.open(dataDir, model: model)
        if !quiet && Console.stderrIsTerminal {
            context[CalibrationProgressKey.self] = { progress in
                var line = "\rcalibrate: \(progress.completed)/\(progress.total) samples"
                line += String(format: "  %.1f samples/s", progress.samplesPerSecond)
                if let eta = progress.remainingSeconds { line += String(format: "  ETA %.0f s ", eta) }
                if progress.completed == progress.total { line += "\n" }
                Console.error(line, terminator: "")
            }
        }
        return pipeline
    }

    /// After the pipeline: `--save-calib` and `--report`.
    static func finish(context: PassContext, parsed: ParsedArguments) throws {
        if let file = parsed.value("--save-calib") {
            // The statistics as calibrated (smooth rescales and re-fingerprints the live ones).
            guard let stats = context[CalibrationResultKey.self] ?? context[CalibrationStatisticsKey.self] else {
                throw DriverError("--save-calib: the pipeline produced no calibration statistics (add calibrate)")
            }
            try stats.save(to: file)
        }
        if let file = parsed.value("--report") {
            let groups = context[SmoothReportKey.self] ?? []
            let data: Data
            if file.hasSuffix(".html") {
                data = Data(SmoothReportHTML.render(groups).utf8)
            } else {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                data = try encoder.encode(groups)
            }
            try data.write(to: URL(fileURLWithPath: file), options: .atomic)
        }
    }

    /// Samples for `--verify`: --calib, else the data beside the model.
    static func verificationData(parsed: ParsedArguments, modelPath: String) throws -> String {
        guard let dir = parsed.value("--calib") ?? dataBeside(modelPath) else {
            throw DriverError("--verify needs samples: pass --calib DIR or put test_data_set_* beside the model")
        }
        return dir
    }

    static func mergeStatistics(_ files: [String], into output: String) throws {
        var merged: CalibrationStatistics?
        for file in files {
            let stats = try CalibrationStatistics.load(from: file)
            if merged == nil { merged = stats } else { try merged?.merge(stats) }
        }
        try merged?.save(to: output)
    }
}
