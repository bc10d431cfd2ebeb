/// Debugging settings of a `PassManager` (the CLI's `--verify-each`, `--print-ir-*`,
/// `--time-passes` flags). Passes can read them through `PassContext.instrumentation`.
public struct PassInstrumentation: Sendable {
    /// Run the verifier on the input and after every pass; a failure names the pass and
    /// sends the IR that failed to the sink.
    public var verifyEach = true
    /// Print the IR before passes with these names.
    public var printIRBefore: Set<String> = []
    /// Print the IR after passes with these names (also when the pass throws).
    public var printIRAfter: Set<String> = []
    public var printIRBeforeAll = false
    public var printIRAfterAll = false
    /// With any print-after setting: only print when the pass reports a change.
    public var printIRAfterOnlyIfChanged = false
    /// Send the wall-time table to the sink after the pipeline.
    public var timePasses = false
    /// Send the per-pass statistics table to the sink after the pipeline.
    public var printStatistics = false
    /// Constants with more elements than this print as `<N elements>`.
    public var printerMaxConstantElements = 16

    public init() {}

    func printsBefore(_ pass: String) -> Bool { printIRBeforeAll || printIRBefore.contains(pass) }
    func printsAfter(_ pass: String) -> Bool { printIRAfterAll || printIRAfter.contains(pass) }
}

/// What one pass did in a pipeline run.
public struct PassRunRecord: Sendable {
    public let pass: String
    public let seconds: Double
    public let result: PassResult
    /// For a step the manager ran to provide a requirement: the pass that needed it
    /// (`upgrade-opset` before `quantize`); nil for the pipeline's own passes.
    public let requiredBy: String?

    public init(pass: String, seconds: Double, result: PassResult, requiredBy: String? = nil) {
        self.pass = pass
        self.seconds = seconds
        self.result = result
        self.requiredBy = requiredBy
    }
}

/// The outcome of a pipeline run: one record per pass, in order.
public struct PipelineReport: Sendable {
    public var records: [PassRunRecord] = []

    public var totalSeconds: Double { records.reduce(0) { $0 + $1.seconds } }
    public var changed: Bool { records.contains { $0.result.changed } }

    /// The wall-time table `--time-passes` prints:
    /// ```
    /// pass timing (wall clock)
    ///      time (ms)       %  pass
    ///          1.250   62.5%  canonicalize-norms
    ///          0.750   37.5%  dce
    ///          2.000  100.0%  total
    /// ```
    public func timingTable() -> String {
        let total = totalSeconds
        var lines = ["pass timing (wall clock)", "     time (ms)       %  pass"]
        func row(_ seconds: Double, _ name: String) -> String {
            let percent = total > 0 ? seconds / total * 100 : 0
            return pad(fixed(seconds * 1000, 3), 14) + pad(fixed(percent, 1) + "%", 8) + "  " + name
        }
        for r in records { lines.append(row(r.seconds, r.pass)) }
        lines.append(row(total, "total"))
        return lines.joined(separator: "\n") + "\n"
    }

    /// One line per pass: `dce: changed, +0 -12 ~0 nodes; initializers-removed=3`.
    public func statisticsTable() -> String {
        var lines = ["pass statistics"]
        for r in records {
            lines.append("  \(r.pass): \(r.result.changed ? "changed" : "unchanged"), \(r.result.statistics.summaryText)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private func pad(_ s: String, _ width: Int) -> String {
        s.count >= width ? s : String(repeating: " ", count: width - s.count) + s
    }

    /// `value` with exactly `digits` decimals (no Foundation formatting).
    private func fixed(_ value: Double, _ digits: Int) -> String {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = (value * scale).rounded()
        guard scaled.isFinite, abs(scaled) < 1e15 else { return value.description }
        let whole = Int(scaled)
        let integer = String(abs(whole) / Int(scale))
        var fraction = String(abs(whole) % Int(scale))
        while fraction.count < digits { fraction = "0" + fraction }
        return (whole < 0 ? "-" : "") + integer + (digits > 0 ? "." + fraction : "")
    }
}

/// A pass failed, or the verifier failed after it. `description` names the pass.
public struct PassExecutionError: Error, CustomStringConvertible {
    public enum Stage: Sendable {
        /// The pass threw.
        case run
        /// The verifier rejected the IR the pass produced.
        case verification
        /// The verifier rejected the input, before any pass ran.
        case inputVerification
        /// The pass needs something of the model that no registered pass provides.
        case requirement
    }

    public let pass: String?
    public let stage: Stage
    public let underlying: any Error

    public var description: String {
        switch stage {
        case .run: return "pass '\(pass ?? "?")' failed: \(underlying)"
        case .verification: return "verifier failed after pass '\(pass ?? "?")': \(underlying)"
        case .inputVerification: return "verifier failed on the input, before any pass: \(underlying)"
        case .requirement: return "pass '\(pass ?? "?")' cannot run: \(underlying)"
        }
    }
}
