import Foundation
import SQIR
import SQRuntime
import SQPasses

/// `sqopt bench MODEL --data DIR [--runs N] [--warmup N] [--threads T] [--json]`: loads and
/// lowers MODEL once, then times whole runs of sqopt's interpreter over the samples in DIR.
/// One run executes every sample once; the report gives the median and minimum wall time.
struct BenchCommand {
    let driver: Driver

    static let usage = "bench MODEL --data DIR [--runs N] [--warmup N] [--threads T] [--json]"

    static let options: [OptionSpec] = [
        .value("--data", valueName: "DIR", help: "inputs: a test_data_set_N folder, or a folder of them (one run = every sample once)"),
        .value("--runs", valueName: "N", help: "timed runs (default 10)"),
        .value("--warmup", valueName: "N", help: "untimed runs first (default 2)"),
        .value("--threads", valueName: "T", help: "kernel threads (default: SQOPT_THREADS, else every core)"),
        .flag("--json", help: "print the timings as JSON"),
        .flag("--help", "-h", help: "show this help"),
    ]

    var help: String {
        """
        USAGE: \(driver.toolName) \(Self.usage)

        Loads MODEL, lowers it to an execution plan once (weights packed, int8 kernels chosen
        for QDQ MatMuls), runs it --warmup times untimed and --runs times timed, and prints
        the median and minimum wall time of a run in milliseconds.

        OPTIONS:
        \(formatOptions(Self.options))
        EXAMPLES:
          \(driver.toolName) bench model.sq-w8a8.onnx --data test_data_set_0 --runs 20 --threads 1
        """
    }

    /// What `bench` reports (also its JSON form).
    struct Result: Encodable {
        let model: String
        let samples: Int
        let runs: Int
        let warmup: Int
        let threads: Int
        let isa: String
        let planMilliseconds: Double
        let medianMilliseconds: Double
        let minMilliseconds: Double
        let maxMilliseconds: Double
        let runMilliseconds: [Double]
    }

    func run(_ args: [String]) throws {
        let parsed = try parseArguments(args, specs: Self.options, command: "bench")
        if parsed.has("--help") { Console.out(help); return }
        guard parsed.positionals.count == 1, let path = parsed.positionals.first else {
            throw usageError(parsed.positionals.isEmpty ? "no MODEL given" : "bench takes exactly one MODEL")
        }
        guard let data = parsed.value("--data") else { throw usageError("no --data DIR given") }
        let runs = try count(parsed, "--runs", default: 10, minimum: 1)
        let warmup = try count(parsed, "--warmup", default: 2, minimum: 0)
        if parsed.value("--threads") != nil {
            // Read once by the kernels (KernelThreads.defaultCount): set before any kernel runs.
            let threads = try count(parsed, "--threads", default: 1, minimum: 1)
            setenv("SQOPT_THREADS", String(threads), 1)
        }

        let model = try ModelIO.load(path)
        let source = try SampleLoader.open(data, model: model)
        let samples = try (0..<source.count).map { try source.sample(at: $0) }
        let planStart = DispatchTime.now().uptimeNanoseconds
        let plan = try ExecutionPlan(model: model)
        let planMilliseconds = Self.milliseconds(since: planStart)

        for _ in 0..<warmup { try runOnce(plan, samples) }
        var times: [Double] = []
        for _ in 0..<runs {
            let start = DispatchTime.now().uptimeNanoseconds
            try runOnce(plan, samples)
            times.append(Self.milliseconds(since: start))
        }
        let sorted = times.sorted()
        let result = Result(model: path, samples: samples.count, runs: runs, warmup: warmup,
                            threads: KernelThreads.defaultCount, isa: KernelISA.active.rawValue,
                            planMilliseconds: planMilliseconds, medianMilliseconds: Self.median(sorted),
                            minMilliseconds: sorted.first ?? 0, maxMilliseconds: sorted.last ?? 0,
                            runMilliseconds: times)
        if parsed.has("--json") {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            Console.out(String(decoding: try encoder.encode(result), as: UTF8.self))
        } else {
            Console.out("bench: \(path) on \(samples.count) sample(s), \(result.threads) thread(s), \(result.isa) kernels")
            Console.out(String(format: "  plan built in %.1f ms", planMilliseconds))
            Console.out(String(format: "  %d runs (+%d warm-up): median %.2f ms  min %.2f ms  max %.2f ms",
                               runs, warmup, result.medianMilliseconds, result.minMilliseconds, result.maxMilliseconds))
        }
    }

    private func runOnce(_ plan: ExecutionPlan, _ samples: [CalibrationSample]) throws {
        for sample in samples { _ = try plan.run(inputs: sample) }
    }

    private func count(_ parsed: ParsedArguments, _ option: String, default value: Int, minimum: Int) throws -> Int {
        guard let text = parsed.value(option) else { return value }
        guard let n = Int(text), n >= minimum else {
            throw usageError("invalid value '\(text)' for \(option) (expected an integer >= \(minimum))")
        }
        return n
    }

    private func usageError(_ message: String) -> UsageError {
        UsageError(message: message, command: "bench")
    }

    static func milliseconds(since start: UInt64) -> Double {
        Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
    }

    /// The median of sorted values (mean of the middle two for an even count).
    static func median(_ sorted: [Double]) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let mid = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
    }
}
