import SQIR
import SQPasses

/// The no-op rule of `sqopt --passes …`: a pipeline that asks for `smooth` or `quantize` and
/// in which one of them found nothing to do must not end in "wrote model" with exit 0 — the
/// user would ship a float model believing it is int8. The run fails (exit 1, nothing
/// written) with the reason of every such pass, unless `--allow-noop` is given; then the
/// reasons become warnings and the model is written.
///
/// The reasons come from the passes' counters (`PipelineReport`), `quantize`'s report in the
/// `PassContext` (`QuantizeReportKey`: linears left float on purpose) and what the graph's
/// MatMul/Gemm nodes are (`LinearCoverage`: float16/bfloat16 weights, int8 weights already).
enum NoopRule {
    /// One line per pass of `report` that did nothing although the pipeline asked for it.
    static func reasons(report: PipelineReport, context: PassContext, model: Model) -> [String] {
        var lines: [String] = []
        var coverage: LinearCoverage?
        func graphCoverage() -> LinearCoverage {
            if let coverage { return coverage }
            let made = LinearCoverage(model.graph)
            coverage = made
            return made
        }
        for record in report.records {
            let statistics = record.result.statistics
            switch record.pass {
            case Quantize.name where statistics[counter: "linears"] + statistics[counter: "bmms"] == 0:
                let skipped = context[QuantizeReportKey.self]?.skipped ?? [:]
                lines.append("quantize: no linear quantized: "
                    + graphCoverage().quantizeNoopReasons(skipped: skipped).joined(separator: "; "))
            case Smooth.name where statistics[counter: "groups"] == 0:
                lines.append("smooth: no group smoothed: " + smoothReason(skipped: statistics[counter: "skipped"], graphCoverage()))
            default:
                continue
            }
        }
        return lines
    }

    private static func smoothReason(skipped: Int, _ coverage: LinearCoverage) -> String {
        if coverage.floatLinears.isEmpty {
            return coverage.quantizeNoopReasons().joined(separator: "; ")
        }
        if skipped > 0 {
            return "\(skipped) group(s) have no per-channel statistics (their inputs were never computed during calibration)"
        }
        return "no group of float linears reads a normalization's output (smooth{scope=all} takes every linear)"
    }

    /// The error of a refused run.
    static func refusal(_ reasons: [String], input: String) -> DriverError {
        DriverError("\(input): nothing to do, no output written:\n"
            + reasons.map { "  \($0)\n" }.joined()
            + "pass --allow-noop to write the model anyway (docs/cli.md, 'Runs that do nothing')")
    }
}
