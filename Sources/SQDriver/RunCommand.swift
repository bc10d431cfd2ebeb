import Foundation
import SQIR
import SQRuntime
import SQPasses

/// `sqopt run MODEL --input NAME=FILE ... | --data DIR --output-dir OUT`: executes the model
/// with sqopt's interpreter and writes one OUTPUT_NAME.npy per graph output.
struct RunCommand {
    let driver: Driver

    static let options: [OptionSpec] = [
        .repeated("--input", valueName: "NAME=FILE", help: "a graph input from a .npy or TensorProto .pb file"),
        .value("--data", valueName: "DIR", help: "a test_data_set_N folder (input_N.pb in graph-input order) or a folder of NAME.npy"),
        .value("--output-dir", valueName: "OUT", help: "where to write OUTPUT_NAME.npy files"),
        .value("--decode", valueName: "N", help: "KV-cache decoders: after the run, N greedy decode steps feeding present.* back as past_key_values.*"),
        .flag("--json", help: "print the output statistics as JSON"),
        .flag("--time", help: "print the wall time of load, lower, run, decode and write on stderr"),
    ]

    var help: String {
        """
        USAGE: \(driver.usageLine(for: "run"))

        Runs MODEL with sqopt's interpreter (int8 kernels for QDQ MatMuls) and prints shape,
        dtype, min/max/mean of each output.

        OPTIONS:
        \(formatOptions(Self.options))
        """
    }

    func run(_ args: [String]) throws {
        let parsed = try parseArguments(args, specs: Self.options, command: "run")
        let path = try parsed.single("MODEL", command: "run")
        guard parsed.value("--data") != nil || !parsed.all("--input").isEmpty else {
            throw UsageError(message: "give the inputs with --input NAME=FILE or --data DIR", command: "run")
        }
        var clock = PhaseClock()
        let model = try ModelIO.load(path)
        clock.lap("load")
        var inputs: [String: Tensor] = [:]
        if let dir = parsed.value("--data") {
            let source = try SampleLoader.open(dir, model: model)
            guard source.count == 1 else {
                throw DriverError("\(dir): holds \(source.count) samples; run takes one (e.g. \(source.location(of: 0)))")
            }
            inputs = try source.sample(at: 0)
            try validateSample(inputs, graphInputs: SampleLoader.runtimeInputs(model), location: source.location(of: 0))
        }
        let known = Set(model.graph.inputs.map(\.name))
        for item in parsed.all("--input") {
            guard let eq = item.firstIndex(of: "=") else {
                throw UsageError(message: "--input expects NAME=FILE, got '\(item)'", command: "run")
            }
            let name = String(item[..<eq]), file = String(item[item.index(after: eq)...])
            guard known.contains(name) else {
                var msg = "the model has no input named '\(name)'"
                if let guess = closestMatch(name, in: Array(known)) { msg += "; did you mean '\(guess)'?" }
                throw DriverError(msg)
            }
            inputs[name] = file.hasSuffix(".npy") ? try NPY.read(file) : try ModelIO.loadTensor(file).0
        }
        var decodeSteps = 0
        if let text = parsed.value("--decode") {
            guard let n = Int(text), n >= 0 else { throw UsageError(message: "--decode expects a count, got '\(text)'", command: "run") }
            decodeSteps = n
        }
        clock.lap("inputs")
        let plan = try ExecutionPlan(model: model)
        clock.lap("lower")
        let start = DispatchTime.now().uptimeNanoseconds
        let outputs = try plan.run(inputs: inputs)
        let ms = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        clock.lap("run")
        try report(outputs, plan: plan, milliseconds: ms, to: parsed.value("--output-dir"), json: parsed.has("--json"))
        clock.lap("write")

        let step = KVDecodeStep(model: model, path: path)
        var previous = (inputs: inputs, outputs: outputs)
        for index in 0..<decodeSteps {
            let next = try step.inputs(after: previous.inputs, outputs: previous.outputs)
            clock.lap("write")
            let t0 = DispatchTime.now().uptimeNanoseconds
            let out = try plan.run(inputs: next)
            let stepMs = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6
            clock.lap("decode")
            Console.out("decode step \(index + 1): input_ids \(next["input_ids"]?.int64Values() ?? [])")
            let dir = parsed.value("--output-dir").map { ($0 as NSString).appendingPathComponent("decode_\(index + 1)") }
            try report(out, plan: plan, milliseconds: stepMs, to: dir, json: parsed.has("--json"))
            previous = (next, out)
        }
        clock.lap("write")
        if parsed.has("--time") { Console.error(clock.summary()) }
    }

    private func report(_ outputs: [String: Tensor], plan: ExecutionPlan, milliseconds ms: Double,
                        to outputDir: String?, json: Bool) throws {
        if let dir = outputDir {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
        var rows: [OutputStatistics] = []
        for name in plan.outputNames {
            guard let t = outputs[name] else { continue }
            rows.append(OutputStatistics(name: name, tensor: t))
            if let dir = outputDir {
                let safe = name.map { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == "." ? $0 : "_" }
                try NPY.write(t, to: (dir as NSString).appendingPathComponent(String(safe) + ".npy"))
            }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            Console.out(String(decoding: try encoder.encode(rows), as: UTF8.self))
        } else {
            for r in rows { Console.out(r.text) }
            Console.out(String(format: "ran %d steps in %.1f ms", plan.stepCount, ms))
        }
    }
}

/// Wall time of the phases of one `sqopt run` (`--time`): each `lap(phase)` adds the time
/// since the previous lap to that phase, so phases that alternate (decode, write) add up.
struct PhaseClock {
    private var last = DispatchTime.now().uptimeNanoseconds
    private let start = DispatchTime.now().uptimeNanoseconds
    private var phases: [(name: String, nanoseconds: UInt64)] = []

    mutating func lap(_ phase: String) {
        let now = DispatchTime.now().uptimeNanoseconds
        if let index = phases.firstIndex(where: { $0.name == phase }) {
            phases[index].nanoseconds += now - last
        } else {
            phases.append((phase, now - last))
        }
        last = now
    }

    /// `time: load 812.3 ms, inputs 0.4 ms, lower 401.2 ms, run 350.1 ms, write 3.0 ms, total 1567.0 ms`
    /// (total: from the command's start to the last lap; process start-up and exit are not in it).
    func summary() -> String {
        let parts = phases.map { "\($0.name) " + String(format: "%.1f ms", Double($0.nanoseconds) / 1e6) }
        let total = Double(last - start) / 1e6
        return "time: " + (parts + [String(format: "total %.1f ms", total)]).joined(separator: ", ")
    }
}

/// One greedy decode step of a KV-cache decoder in the optimum layout: the next token is the
/// argmax of the last position's logits; `past_key_values.X` ← `present.X`; `attention_mask`
/// grows by one 1 per row; `position_ids` continues from the last position.
struct KVDecodeStep {
    let model: Model
    let path: String

    func inputs(after inputs: [String: Tensor], outputs: [String: Tensor]) throws -> [String: Tensor] {
        let names = Set(model.graph.inputs.map(\.name))
        guard names.contains("input_ids"), let logits = outputs["logits"], logits.rank == 3 else {
            throw DriverError("\(path): --decode needs an 'input_ids' input and a 'logits' output [batch, sequence, vocab]")
        }
        let (batch, seq, vocab) = (logits.shape[0], logits.shape[1], logits.shape[2])
        guard seq > 0, vocab > 0 else { throw DriverError("\(path): --decode: the logits are empty (\(logits.shape))") }
        let values = logits.doubleValues()
        var next = inputs
        var tokens: [Int64] = []
        for b in 0..<batch {
            let row = values[((b * seq + seq - 1) * vocab)..<((b * seq + seq) * vocab)]
            tokens.append(Int64(row.indices.max { row[$0] < row[$1] }.map { $0 - row.startIndex } ?? 0))
        }
        next["input_ids"] = Tensor(shape: [batch, 1], values: tokens)
        var pastCount = 0
        for name in names where name.hasPrefix("past_key_values.") {
            let present = "present." + name.dropFirst("past_key_values.".count)
            guard let t = outputs[present] else {
                throw DriverError("\(path): --decode: input '\(name)' has no matching output '\(present)'")
            }
            next[name] = t
            pastCount += 1
        }
        guard pastCount > 0 else { throw DriverError("\(path): --decode needs past_key_values.* inputs (a KV-cache decoder)") }
        if names.contains("attention_mask") {
            guard let mask = inputs["attention_mask"]?.int64Values(), mask.count % max(batch, 1) == 0 else {
                throw DriverError("\(path): --decode needs the attention_mask of the previous step")
            }
            let width = mask.count / max(batch, 1)
            var grown: [Int64] = []
            for b in 0..<batch { grown += mask[(b * width)..<((b + 1) * width)] + [1] }
            next["attention_mask"] = Tensor(shape: [batch, width + 1], values: grown)
        }
        if names.contains("position_ids") {
            guard let positions = inputs["position_ids"]?.int64Values(), positions.count % max(batch, 1) == 0 else {
                throw DriverError("\(path): --decode needs the position_ids of the previous step")
            }
            let width = positions.count / max(batch, 1)
            next["position_ids"] = Tensor(shape: [batch, 1], values: (0..<batch).map { positions[($0 + 1) * width - 1] + 1 })
        }
        return next
    }
}

struct OutputStatistics: Encodable {
    let name: String
    let dtype: String
    let shape: [Int]
    let min: Double
    let max: Double
    let mean: Double

    init(name: String, tensor: Tensor) {
        self.name = name
        dtype = tensor.dtype.shortName
        shape = tensor.shape
        // float32 (logits: 12.6 M values for SmolLM2 at 256 tokens) in one pass without a
        // Double copy; the sum is in Double in element order, as before.
        let (low, high, sum, count): (Double, Double, Double, Int)
        if tensor.dtype == .float {
            (low, high, sum, count) = tensor.withElements(as: Float.self) { values in
                // Seeded with the first value, as Array.min()/max() are (NaN rules alike).
                var low = Double(values.first ?? 0), high = low, sum = 0.0
                for value in values {
                    let x = Double(value)
                    if x < low { low = x }
                    if x > high { high = x }
                    sum += x
                }
                return (low, high, sum, values.count)
            }
        } else {
            let values = tensor.doubleValues()
            (low, high, sum, count) = (values.min() ?? 0, values.max() ?? 0, values.reduce(0, +), values.count)
        }
        min = count == 0 ? 0 : low
        max = count == 0 ? 0 : high
        mean = count == 0 ? 0 : sum / Double(count)
    }

    var text: String {
        "\(name): \(dtype)\(shape)  min \(String(format: "%.6g", min))  max \(String(format: "%.6g", max))  mean \(String(format: "%.6g", mean))"
    }
}
