import Foundation
import SQPasses

/// `--report FILE.html`: a self-contained page with, per smoothed group, the channel max |X|
/// before and after smoothing as an inline SVG bar chart (the paper's Figure 4), the α used,
/// and whether 1/s was folded into the producer or applied by an inserted Mul.
enum SmoothReportHTML {
    static func render(_ groups: [SmoothGroupReport], autoPolicy: AutoPolicyReport? = nil) -> String {
        let folded = groups.filter(\.folded).count
        var html = """
        <!DOCTYPE html>
        <html><head><meta charset="utf-8"><title>sqopt smoothing report</title>
        <style>
        body{font-family:system-ui,sans-serif;margin:2em;color:#222}
        table{border-collapse:collapse}td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:left}
        .group{margin:1.5em 0}.before{fill:#d9534f}.after{fill:#2a7ab0}small{color:#666}
        </style></head><body>
        <h1>SmoothQuant smoothing report</h1>
        <p>\(groups.count) groups smoothed: \(folded) folded into their producer, \(groups.count - folded) with an inserted Mul(X, 1/s).
        Bars show max |X<sub>j</sub>| per input channel j, <span style="color:#d9534f">before</span> and
        <span style="color:#2a7ab0">after</span> smoothing, on a shared linear scale per group.</p>
        <table><tr><th>activation</th><th>linears</th><th>α</th><th>applied</th><th>max|X| before → after</th><th>s range</th></tr>

        """
        for g in groups {
            html += "<tr><td>\(escape(g.activation))</td><td>\(g.layers.count)</td><td>\(format(g.alpha))</td>"
            html += "<td>\(g.folded ? "folded into " + escape(g.foldedInto ?? "") : "Mul" + (g.foldRefusal.map { " (" + escape($0) + ")" } ?? ""))</td>"
            html += "<td>\(format(g.channelAbsMaxBefore.max() ?? 0)) → \(format(g.channelAbsMaxAfter.max() ?? 0))</td>"
            html += "<td>\(format(g.factorMin)) … \(format(g.factorMax))</td></tr>\n"
        }
        html += "</table>\n"
        for g in groups {
            html += "<div class=\"group\"><h3>\(escape(g.activation))</h3><small>\(g.layers.map(escape).joined(separator: ", "))</small><br>\n"
            html += chart(before: g.channelAbsMaxBefore, after: g.channelAbsMaxAfter) + "</div>\n"
        }
        if let autoPolicy { html += autoPolicySection(autoPolicy) }
        return html + "</body></html>\n"
    }

    /// `quantize{policy=auto}`: the form of every layer and why.
    static func autoPolicySection(_ report: AutoPolicyReport) -> String {
        var html = "<h2>quantize{policy=auto}</h2>\n<p>" + escape(report.text.split(separator: "\n").first.map(String.init) ?? "") + "</p>\n"
        html += "<table><tr><th>layer</th><th>form</th><th>MACs/token</th><th>error O3</th><th>error O1</th><th>why</th></tr>\n"
        for layer in report.layers {
            html += "<tr><td>\(escape(layer.node))</td><td>\(layer.form.rawValue)</td><td>\(layer.macs)</td>"
            html += "<td>\(format(layer.staticError))</td><td>\(format(layer.perTokenError))</td><td>\(escape(layer.reason))</td></tr>\n"
        }
        return html + "</table>\n"
    }

    /// Two rows of bars (before on top, after below) sharing one y scale.
    static func chart(before: [Float], after: [Float]) -> String {
        let width = 900.0, rowHeight = 110.0
        let peak = Double(max(before.max() ?? 0, after.max() ?? 0, Float.leastNonzeroMagnitude))
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(2 * rowHeight + 30))\">\n"
        for (row, (values, cls, label)) in [(before, "before", "before"), (after, "after", "after")].enumerated() {
            let top = Double(row) * (rowHeight + 15) + 12
            svg += "<text x=\"0\" y=\"\(Int(top) - 2)\" font-size=\"11\">\(label) (max \(format(values.max() ?? 0)))</text>\n"
            let barWidth = width / Double(max(values.count, 1))
            for (j, v) in values.enumerated() {
                let h = Double(v) / peak * rowHeight
                svg += "<rect class=\"\(cls)\" x=\"\(fmt(Double(j) * barWidth))\" y=\"\(fmt(top + rowHeight - h))\" width=\"\(fmt(max(barWidth, 0.5)))\" height=\"\(fmt(h))\"/>"
            }
            svg += "\n"
        }
        return svg + "</svg>\n"
    }

    private static func fmt(_ x: Double) -> String { String(format: "%.2f", x) }
    private static func format(_ x: Float) -> String { String(format: "%.4g", Double(x)) }
    private static func format(_ x: Double) -> String { String(format: "%.3g", x) }
    private static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
