import Foundation
import SQIR
import SQRuntime
import SQPasses

/// `sqopt bench MODEL --data DIR [--runs N] [--warmup N] [--threads T] [--json]`: loads and
/// lowers MODEL once, then times whole runs of sqopt's interpreter over the samples in DIR.
/// One run executes every sample once; the report gives the median and minimum wall time.
struct BenchCommand {
    let driver: Driver

    static let usage = "bench MODEL --data DIR [--runs N] [--warmup N] [--threads T] [--decode N] [--profile] [--json]"

    static let options: [OptionSpec] = [
        .value("--data", valueName: "DIR", help: "inputs: a test_data_set_N folder, or a folder of them (one run = every sample once)"),
        .value("--runs", valueName: "N", help: "timed runs (default 10)"),
        .value("--warmup", valueName: "N", help: "untimed runs first (default 2)"),
        .value("--threads", valueName: "T", help: "kernel threads (default: SQOPT_THREADS, else every core)"),
        .value("--decode", valueName: "N", help: "KV-cache decoders: time N greedy decode steps after each (untimed) run of the sample"),
        .flag("--profile", help: "also time every step and print where a run's time goes, by op kind and by node"),
        .flag("--json", help: "print the timings as JSON"),
        .flag("--help", "-h", help: "show this help"),
    ]

    var help: String {
        """
        USAGE: \(driver.toolName) \(Self.usage)

        Loads MODEL, lowers it to an execution plan once (weights packed, int8 kernels chosen
        for QDQ MatMuls), runs it --warmup times untimed and --runs times timed, and prints
        the median and minimum wall time of a run in milliseconds. --profile times every
        step of the timed runs too and prints the mean time per run by op kind (op type;
        ` (int8)` marks QDQ MatMul/Gemm patterns run as int8 kernels) and by node name with
        each digit run replaced by `#` (so the layers of a stack add up), sorted, with
        their share of the summed step time. With --decode N (KV-cache decoders, the layout
        of `run --decode`), each run is the sample's prefill, untimed, then N decode steps
        of one token each, timed one by one: the figures are per decode step.

        OPTIONS:
        \(formatOptions(Self.options))
        EXAMPLES:
          \(driver.toolName) bench model.sq-w8a8.onnx --data test_data_set_0 --runs 20 --threads 1
          \(driver.toolName) bench model.onnx --data test_data_set_0 --runs 5 --profile
          \(driver.toolName) bench kv.sq-w8a8.onnx --data test_data_set_0 --decode 32 --runs 3 --threads 2
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
        /// Wall time of each timed run (with `decodeSteps`: of each timed decode step).
        let runMilliseconds: [Double]
        /// With `--decode N`: N, and the figures above are per decode step.
        let decodeSteps: Int?
        /// With `--profile`: mean milliseconds per run by op kind and by node group.
        let profile: Profile?
    }

    /// One row of a profile table.
    struct ProfileRow: Encodable {
        let name: String
        /// Steps of one run in this group.
        let steps: Int
        /// Mean milliseconds per run.
        let milliseconds: Double
        /// Share of the summed step time, in percent.
        let percent: Double
    }

    struct Profile: Encodable {
        /// Sum of all steps' mean times (a run's time minus input checks and bookkeeping).
        let stepMilliseconds: Double
        let byKind: [ProfileRow]
        let byNode: [ProfileRow]
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
        // SQOPT_SHAPE_MEMO=1: with the shape memo (PlanOptions.memoizeShapes, off by default), for measuring.
        let memoize = ProcessInfo.processInfo.environment["SQOPT_SHAPE_MEMO"] == "1"
        let plan = try ExecutionPlan(model: model, options: PlanOptions(memoizeShapes: memoize))
        let planMilliseconds = Self.milliseconds(since: planStart)

        let profiling = parsed.has("--profile")
        var stepNanoseconds = [UInt64](repeating: 0, count: plan.stepCount)
        var times: [Double] = []
        let decodeSteps = try parsed.value("--decode").map { _ in try count(parsed, "--decode", default: 1, minimum: 1) }
        if let decodeSteps {
            guard samples.count == 1, let prompt = samples.first else {
                throw DriverError("\(data): holds \(samples.count) samples; bench --decode takes one (the prompt)")
            }
            let step = KVDecodeStep(model: model, path: path)
            for round in 0..<(warmup + runs) {
                var inputs = prompt
                var outputs = try plan.run(inputs: inputs)
                for _ in 0..<decodeSteps {
                    inputs = try step.inputs(after: inputs, outputs: outputs)
                    let start = DispatchTime.now().uptimeNanoseconds
                    if profiling && round >= warmup {
                        outputs = try plan.run(inputs: inputs, stepNanoseconds: &stepNanoseconds)
                    } else {
                        outputs = try plan.run(inputs: inputs)
                    }
                    if round >= warmup { times.append(Self.milliseconds(since: start)) }
                }
            }
        } else {
            for _ in 0..<warmup { try runOnce(plan, samples) }
            for _ in 0..<runs {
                let start = DispatchTime.now().uptimeNanoseconds
                if profiling {
                    for sample in samples { _ = try plan.run(inputs: sample, stepNanoseconds: &stepNanoseconds) }
                } else {
                    try runOnce(plan, samples)
                }
                times.append(Self.milliseconds(since: start))
            }
        }
        let profile = profiling ? Self.profile(plan.stepInfos, stepNanoseconds, runs: times.count) : nil
        let sorted = times.sorted()
        let result = Result(model: path, samples: samples.count, runs: runs, warmup: warmup,
                            threads: KernelThreads.defaultCount, isa: KernelISA.active.rawValue,
                            planMilliseconds: planMilliseconds, medianMilliseconds: Self.median(sorted),
                            minMilliseconds: sorted.first ?? 0, maxMilliseconds: sorted.last ?? 0,
                            runMilliseconds: times, decodeSteps: decodeSteps, profile: profile)
        if parsed.has("--json") {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            Console.out(String(decoding: try encoder.encode(result), as: UTF8.self))
        } else {
            Console.out("bench: \(path) on \(samples.count) sample(s), \(result.threads) thread(s), \(result.isa) kernels")
            Console.out(String(format: "  plan built in %.1f ms", planMilliseconds))
            if let decodeSteps {
                Console.out(String(format: "  %d runs (+%d warm-up) of %d decode steps: per step median %.2f ms  min %.2f ms  max %.2f ms (%.1f tokens/s)",
                                   runs, warmup, decodeSteps, result.medianMilliseconds, result.minMilliseconds,
                                   result.maxMilliseconds, result.medianMilliseconds > 0 ? 1000 / result.medianMilliseconds : 0))
            } else {
                Console.out(String(format: "  %d runs (+%d warm-up): median %.2f ms  min %.2f ms  max %.2f ms",
                                   runs, warmup, result.medianMilliseconds, result.minMilliseconds, result.maxMilliseconds))
            }
            if let profile {
                let unit = decodeSteps == nil ? "run" : "decode step"
                Console.out("  profile: mean per \(unit) over the timed runs, steps sum to "
                            + String(format: "%.2f ms", profile.stepMilliseconds))
                let memo = plan.shapeMemoStats
                if memo.steps > 0 {
                    Console.out("  shape memo: \(memo.steps) steps; \(memo.hits) runs of them served from it, \(memo.misses) computed (all runs)")
                }
                Console.out(Self.table(profile.byKind, title: "op kind"))
                Console.out(Self.table(Array(profile.byNode.prefix(Self.nodeRows)), title: "node (digits as #)"))
                if profile.byNode.count > Self.nodeRows {
                    Console.out("  (\(profile.byNode.count - Self.nodeRows) more node groups; --json lists all)")
                }
            }
        }
    }

    /// Node groups shown in the text profile.
    static let nodeRows = 25

    /// Groups the summed step times by kind and by node name (digit runs as `#`), slowest first.
    static func profile(_ infos: [StepInfo], _ nanoseconds: [UInt64], runs: Int) -> Profile {
        let perRun = nanoseconds.map { Double($0) / 1e6 / Double(max(runs, 1)) }
        let total = perRun.reduce(0, +)
        func rows(_ key: (StepInfo) -> String) -> [ProfileRow] {
            var sums: [String: (steps: Int, ms: Double)] = [:]
            for (info, ms) in zip(infos, perRun) {
                sums[key(info), default: (0, 0)].steps += 1
                sums[key(info), default: (0, 0)].ms += ms
            }
            return sums.map { ProfileRow(name: $0.key, steps: $0.value.steps, milliseconds: $0.value.ms,
                                         percent: total > 0 ? 100 * $0.value.ms / total : 0) }
                .sorted { $0.milliseconds != $1.milliseconds ? $0.milliseconds > $1.milliseconds : $0.name < $1.name }
        }
        return Profile(stepMilliseconds: total, byKind: rows(\.kind),
                       byNode: rows { nodeGroup($0.node.isEmpty ? "(unnamed \($0.kind))" : $0.node) + " [\($0.kind)]" })
    }

    /// A node name with every run of decimal digits replaced by `#`.
    static func nodeGroup(_ name: String) -> String {
        var out = ""
        var inDigits = false
        for c in name {
            if c.isASCII && c.isNumber {
                if !inDigits { out.append("#") }
                inDigits = true
            } else {
                out.append(c)
                inDigits = false
            }
        }
        return out
    }

    /// `  NAME  steps  ms  %` rows under a header.
    static func table(_ rows: [ProfileRow], title: String) -> String {
        let width = max(title.count, rows.map(\.name.count).max() ?? 0)
        func pad(_ s: String) -> String { s + String(repeating: " ", count: max(0, width - s.count)) }
        var lines = ["  " + pad(title) + "   steps          ms       %"]
        for r in rows {
            lines.append("  " + pad(r.name) + String(format: "  %6d  %10.3f  %6.2f", r.steps, r.milliseconds, r.percent))
        }
        return lines.joined(separator: "\n")
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
