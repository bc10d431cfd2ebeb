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
        .flag("--json", help: "print the output statistics as JSON"),
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
        guard parsed.positionals.count == 1, let path = parsed.positionals.first else {
            throw UsageError(message: "run takes exactly one MODEL", command: "run")
        }
        guard parsed.value("--data") != nil || !parsed.all("--input").isEmpty else {
            throw UsageError(message: "give the inputs with --input NAME=FILE or --data DIR", command: "run")
        }
        let model = try ModelIO.load(path)
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
        let plan = try ExecutionPlan(model: model)
        let start = DispatchTime.now().uptimeNanoseconds
        let outputs = try plan.run(inputs: inputs)
        let ms = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6

        if let dir = parsed.value("--output-dir") {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
        var rows: [OutputStatistics] = []
        for name in plan.outputNames {
            guard let t = outputs[name] else { continue }
            rows.append(OutputStatistics(name: name, tensor: t))
            if let dir = parsed.value("--output-dir") {
                let safe = name.map { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == "." ? $0 : "_" }
                try NPY.write(t, to: (dir as NSString).appendingPathComponent(String(safe) + ".npy"))
            }
        }
        if parsed.has("--json") {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            Console.out(String(decoding: try encoder.encode(rows), as: UTF8.self))
        } else {
            for r in rows { Console.out(r.text) }
            Console.out(String(format: "ran %d steps in %.1f ms", plan.stepCount, ms))
        }
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
        let values = tensor.doubleValues()
        self.name = name
        dtype = tensor.dtype.shortName
        shape = tensor.shape
        min = values.min() ?? 0
        max = values.max() ?? 0
        mean = values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count)
    }

    var text: String {
        "\(name): \(dtype)\(shape)  min \(String(format: "%.6g", min))  max \(String(format: "%.6g", max))  mean \(String(format: "%.6g", mean))"
    }
}
