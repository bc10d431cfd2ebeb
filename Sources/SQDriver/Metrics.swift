import Foundation
import SQIR

/// Error metrics of a candidate tensor against a reference tensor (both converted to Double).
struct Comparison: Encodable {
    let name: String
    let shape: [Int]
    let cosine: Double
    let relativeL2: Double
    let maxAbsError: Double
    let snrDB: Double
    /// Only for logits-like outputs (rank ≥ 2, last dim > 1): fraction of rows whose argmax agrees.
    var top1Agreement: Double?
    /// Only for logits-like outputs: mean over rows of KL(softmax(ref) ‖ softmax(cand)), in nats.
    var klDivergence: Double?

    /// Compares `candidate` against `reference`; `logits` adds top-1 agreement and KL.
    static func compare(name: String, reference: Tensor, candidate: Tensor, logits: Bool) throws -> Comparison {
        guard reference.shape == candidate.shape else {
            throw DriverError("output '\(name)': reference shape \(reference.shape) but candidate shape \(candidate.shape)")
        }
        let r = reference.doubleValues(), c = candidate.doubleValues()
        var dot = 0.0, rr = 0.0, cc = 0.0, err = 0.0, maxAbs = 0.0
        for i in 0..<r.count {
            let d = c[i] - r[i]
            dot += r[i] * c[i]
            rr += r[i] * r[i]
            cc += c[i] * c[i]
            err += d * d
            maxAbs = max(maxAbs, abs(d))
        }
        let cosine = (rr == 0 || cc == 0) ? (rr == cc ? 1 : 0) : dot / (rr.squareRoot() * cc.squareRoot())
        let relative = rr == 0 ? (err == 0 ? 0 : .infinity) : (err / rr).squareRoot()
        let snr = err == 0 ? .infinity : 10 * log10(rr / err)
        var result = Comparison(name: name, shape: reference.shape, cosine: cosine, relativeL2: relative,
                                maxAbsError: maxAbs, snrDB: snr)
        if logits, let width = reference.shape.last, width > 1 {
            let rows = r.count / width
            var agree = 0
            var kl = 0.0
            for row in 0..<rows {
                let base = row * width
                let refRow = r[base..<(base + width)], candRow = c[base..<(base + width)]
                if argmax(refRow) == argmax(candRow) { agree += 1 }
                kl += klDivergence(refRow, candRow)
            }
            result.top1Agreement = rows == 0 ? 1 : Double(agree) / Double(rows)
            result.klDivergence = rows == 0 ? 0 : kl / Double(rows)
        }
        return result
    }

    private static func argmax(_ xs: ArraySlice<Double>) -> Int {
        var best = xs.startIndex
        for i in xs.indices where xs[i] > xs[best] { best = i }
        return best - xs.startIndex
    }

    /// KL(softmax(p) ‖ softmax(q)) computed stably from logits.
    private static func klDivergence(_ p: ArraySlice<Double>, _ q: ArraySlice<Double>) -> Double {
        func logSoftmax(_ xs: ArraySlice<Double>) -> [Double] {
            let m = xs.max() ?? 0
            let lse = m + log(xs.reduce(0) { $0 + exp($1 - m) })
            return xs.map { $0 - lse }
        }
        let lp = logSoftmax(p), lq = logSoftmax(q)
        var kl = 0.0
        for i in 0..<lp.count { kl += exp(lp[i]) * (lp[i] - lq[i]) }
        return max(kl, 0)
    }

    /// Merges per-sample comparisons of the same output into one (worst-case of each metric,
    /// except top-1 and KL which are averaged).
    static func combine(_ items: [Comparison]) -> Comparison? {
        guard var out = items.first else { return nil }
        for c in items.dropFirst() {
            out = Comparison(name: out.name, shape: out.shape, cosine: min(out.cosine, c.cosine),
                             relativeL2: max(out.relativeL2, c.relativeL2), maxAbsError: max(out.maxAbsError, c.maxAbsError),
                             snrDB: min(out.snrDB, c.snrDB), top1Agreement: out.top1Agreement, klDivergence: out.klDivergence)
        }
        let tops = items.compactMap(\.top1Agreement), kls = items.compactMap(\.klDivergence)
        if !tops.isEmpty { out.top1Agreement = tops.reduce(0, +) / Double(tops.count) }
        if !kls.isEmpty { out.klDivergence = kls.reduce(0, +) / Double(kls.count) }
        return out
    }

    var row: String {
        var s = name.padding(toLength: max(name.count, 28), withPad: " ", startingAt: 0)
        s += String(format: "  cos %.6f  relL2 %.3e  maxabs %.3e  SNR %6.2f dB", cosine, relativeL2, maxAbsError, snrDB)
        if let top1Agreement { s += String(format: "  top1 %.4f", top1Agreement) }
        if let klDivergence { s += String(format: "  KL %.3e", klDivergence) }
        return s
    }
}
