/// Help text and Markdown generated from pass metadata, so `--list-passes` and
/// docs/passes.md cannot drift from the code.
extension PassRegistry {
    /// What `--list-passes` prints: each pass (sorted) with its summary, then its options as
    /// `name=default  type  help`.
    public func listing() -> String {
        let sorted = passes.sorted { $0.name < $1.name }
        let nameWidth = (sorted.map(\.name.count).max() ?? 0) + 2
        var lines: [String] = []
        for info in sorted {
            lines.append(info.name.padded(to: nameWidth) + info.summary)
            let optionTexts = info.options.map { "\($0.name)=\($0.defaultText)" }
            let optionWidth = (optionTexts.map(\.count).max() ?? 0) + 2
            for (option, text) in zip(info.options, optionTexts) {
                lines.append("    " + text.padded(to: optionWidth) + "<\(option.typeName)>  \(option.help)")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The generated Markdown for one pass (between the markers of docs/passes.md).
    public static func markdown(for info: PassInfo) -> String {
        var out = "`\(info.name)`: \(info.summary).\n\n\(info.description)\n"
        if info.options.isEmpty {
            out += "\nOptions: none.\n"
        } else {
            out += "\n| Option | Type | Default | Meaning |\n|---|---|---|---|\n"
            for o in info.options {
                out += "| `\(o.name)` | \(o.typeName.replacingOccurrences("|", "\\|")) | `\(o.defaultText)` | \(o.help) |\n"
            }
        }
        if !info.statistics.isEmpty {
            out += "\n| Statistic | Meaning |\n|---|---|\n"
            for s in info.statistics { out += "| `\(s.name)` | \(s.help) |\n" }
        }
        return out
    }

    static func beginMarker(_ name: String) -> String {
        "<!-- BEGIN GENERATED pass=\(name): from the pass's metadata; edit the Swift, not this block -->"
    }

    static func endMarker(_ name: String) -> String { "<!-- END GENERATED pass=\(name) -->" }

    /// `markdown` with every generated block replaced by the current metadata. Returns the
    /// new text plus the registered passes that have no block and the blocks naming no
    /// registered pass.
    public func regeneratingDocumentation(_ markdown: String) -> (text: String, missing: [String], unknown: [String]) {
        var text = markdown
        var missing: [String] = []
        for info in passes.sorted(by: { $0.name < $1.name }) {
            let begin = PassRegistry.beginMarker(info.name), end = PassRegistry.endMarker(info.name)
            guard let b = text.firstRange(of: begin), let e = text[b.upperBound...].firstRange(of: end) else {
                missing.append(info.name)
                continue
            }
            text.replaceSubrange(b.upperBound..<e.lowerBound, with: "\n" + PassRegistry.markdown(for: info))
        }
        var unknown: [String] = []
        var rest = Substring(text)
        while let r = rest.firstRange(of: "<!-- BEGIN GENERATED pass=") {
            let name = rest[r.upperBound...].prefix { $0 != ":" && $0 != " " }
            if info(named: String(name)) == nil { unknown.append(String(name)) }
            rest = rest[r.upperBound...]
        }
        return (text, missing, unknown)
    }

    /// A fresh block for a pass (markers included), to paste into docs/passes.md.
    public static func documentationBlock(for info: PassInfo) -> String {
        beginMarker(info.name) + "\n" + markdown(for: info) + endMarker(info.name) + "\n"
    }
}

extension String {
    func padded(to width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }
}
