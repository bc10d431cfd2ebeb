/// A small FileCheck (LLVM's test matcher) for IR-in, IR-out tests.
///
/// Directives are read from lines containing `CHECK:`, `CHECK-NEXT:`, `CHECK-SAME:`,
/// `CHECK-NOT:`, `CHECK-LABEL:` or `CHECK-EMPTY:` (usually after `//`):
/// - `CHECK` finds the pattern at or after the end of the previous match;
/// - `CHECK-NEXT` on the next line; `CHECK-SAME` later on the same line; `CHECK-EMPTY` the
///   next line is empty;
/// - `CHECK-NOT` must not match between the previous and the next positive match;
/// - `CHECK-LABEL` splits the output into blocks first; other directives stay in their block.
///
/// In a pattern, runs of spaces match any horizontal whitespace, `{{re}}` is a regular
/// expression, `[[NAME:re]]` captures, and `[[NAME]]` must equal an earlier capture.
public struct FileCheck {
    public enum Kind: String, Sendable {
        case check = "", next = "-NEXT", same = "-SAME", not = "-NOT", label = "-LABEL", empty = "-EMPTY"
    }

    public struct Directive: Sendable {
        public let kind: Kind
        public let pattern: String
        /// 1-based line in the check text.
        public let line: Int
    }

    public struct Failure: Error, CustomStringConvertible {
        public let directive: Directive?
        public let message: String
        public var description: String {
            guard let d = directive else { return message }
            return "CHECK\(d.kind.rawValue) at check line \(d.line) ('\(d.pattern)'): \(message)"
        }
    }

    public var prefix: String

    public init(prefix: String = "CHECK") {
        self.prefix = prefix
    }

    /// The directives in `text`, in order.
    public func directives(in text: String) -> [Directive] {
        var out: [Directive] = []
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            guard let range = line.firstRange(of: prefix) else { continue }
            let rest = line[range.upperBound...]
            for kind in [Kind.next, .same, .not, .label, .empty, .check] {
                let marker = kind.rawValue + ":"
                if rest.hasPrefix(marker) {
                    out.append(Directive(kind: kind, pattern: String(rest.dropFirst(marker.count)).trimmingSpaces, line: i + 1))
                    break
                }
            }
        }
        return out
    }

    /// Checks `output` against the directives in `checks`; throws the first failure.
    public func match(_ output: String, checks: String) throws {
        let all = directives(in: checks)
        guard !all.isEmpty else { throw Failure(directive: nil, message: "no \(prefix) directives found") }
        var matcher = Matcher(lines: output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init))
        try matcher.run(all)
    }
}

private struct Position: Comparable {
    var line: Int
    var offset: Int // UTF-8 offset within the line
    static func < (a: Position, b: Position) -> Bool { (a.line, a.offset) < (b.line, b.offset) }
}

private struct Matcher {
    let lines: [String]
    var variables: [String: String] = [:]

    init(lines: [String]) {
        self.lines = lines
    }

    mutating func run(_ directives: [FileCheck.Directive]) throws {
        // Labels first: they fix the blocks the other directives search in.
        var labelLines: [Int] = []
        var searchFrom = Position(line: 0, offset: 0)
        for label in directives where label.kind == .label {
            guard let found = try find(label, from: searchFrom, before: lines.count) else {
                throw FileCheck.Failure(directive: label, message: "label not found in the output")
            }
            labelLines.append(found.start.line)
            searchFrom = Position(line: found.start.line + 1, offset: 0)
        }
        var blockEnd = labelLines.first ?? lines.count
        var labelIndex = 0
        var cursor = Position(line: 0, offset: 0)
        var pendingNot: [(FileCheck.Directive, Position)] = []

        func checkNots(until end: Position) throws {
            for (directive, start) in pendingNot {
                if let found = try find(directive, from: start, before: end.line + 1), found.start < end {
                    throw FileCheck.Failure(directive: directive, message: "found on line \(found.start.line + 1): '\(lines[found.start.line])'")
                }
            }
            pendingNot.removeAll()
        }

        for directive in directives {
            switch directive.kind {
            case .label:
                let line = labelLines[labelIndex]
                try checkNots(until: Position(line: line, offset: 0))
                labelIndex += 1
                blockEnd = labelIndex < labelLines.count ? labelLines[labelIndex] : lines.count
                guard let found = try find(directive, from: Position(line: line, offset: 0), before: line + 1) else {
                    throw FileCheck.Failure(directive: directive, message: "label vanished")
                }
                cursor = found.end
            case .not:
                pendingNot.append((directive, cursor))
            case .check:
                guard let found = try find(directive, from: cursor, before: blockEnd) else {
                    throw failure(directive, "not found after output line \(cursor.line + 1)", near: cursor.line)
                }
                try checkNots(until: found.start)
                cursor = found.end
            case .next, .same, .empty:
                let line = directive.kind == .same ? cursor.line : cursor.line + 1
                guard line < blockEnd else { throw failure(directive, "no line \(line + 1) in this block", near: cursor.line) }
                let from = directive.kind == .same ? cursor : Position(line: line, offset: 0)
                if directive.kind == .empty {
                    guard lines[line].trimmingSpaces.isEmpty else { throw failure(directive, "line \(line + 1) is not empty", near: line) }
                    cursor = Position(line: line, offset: lines[line].utf8.count)
                    try checkNots(until: cursor)
                    continue
                }
                guard let found = try find(directive, from: from, before: line + 1) else {
                    throw failure(directive, "not found on output line \(line + 1)", near: line)
                }
                try checkNots(until: found.start)
                cursor = found.end
            }
        }
        try checkNots(until: Position(line: blockEnd, offset: 0))
    }

    private func failure(_ directive: FileCheck.Directive, _ message: String, near line: Int) -> FileCheck.Failure {
        let shown = line < lines.count ? " (output line \(line + 1): '\(lines[line])')" : ""
        return FileCheck.Failure(directive: directive, message: message + shown)
    }

    /// The first match of `directive` at or after `from`, on lines before `endLine`; binds
    /// captures.
    private mutating func find(_ directive: FileCheck.Directive, from: Position,
                               before endLine: Int) throws -> (start: Position, end: Position)? {
        let (regex, captures) = try compile(directive)
        var line = from.line
        while line < min(endLine, lines.count) {
            let text = lines[line]
            let startOffset = line == from.line ? min(from.offset, text.utf8.count) : 0
            let start = text.utf8.index(text.startIndex, offsetBy: startOffset)
            if let m = text[start...].firstMatch(of: regex) {
                for name in captures {
                    if let value = m.output[name]?.substring { variables[name] = String(value) }
                }
                let s = text.utf8.distance(from: text.startIndex, to: m.range.lowerBound)
                let e = text.utf8.distance(from: text.startIndex, to: m.range.upperBound)
                return (Position(line: line, offset: s), Position(line: line, offset: e))
            }
            line += 1
        }
        return nil
    }

    /// Pattern text -> regex; returns the names it captures.
    private func compile(_ directive: FileCheck.Directive) throws -> (Regex<AnyRegexOutput>, [String]) {
        var regex = ""
        var captures: [String] = []
        var rest = Substring(directive.pattern)
        while let c = rest.first {
            if rest.hasPrefix("{{"), let close = rest.firstRange(of: "}}") {
                regex += "(?:" + rest[rest.index(rest.startIndex, offsetBy: 2)..<close.lowerBound] + ")"
                rest = rest[close.upperBound...]
            } else if rest.hasPrefix("[["), let close = rest.firstRange(of: "]]") {
                let body = rest[rest.index(rest.startIndex, offsetBy: 2)..<close.lowerBound]
                if let colon = body.firstIndex(of: ":") {
                    let name = String(body[..<colon])
                    regex += "(?<\(name)>" + body[body.index(after: colon)...] + ")"
                    captures.append(name)
                } else {
                    guard let value = variables[String(body)] else {
                        throw FileCheck.Failure(directive: directive, message: "undefined variable [[\(body)]]")
                    }
                    regex += Matcher.escape(value)
                }
                rest = rest[close.upperBound...]
            } else if c == " " || c == "\t" {
                while let w = rest.first, w == " " || w == "\t" { rest.removeFirst() }
                regex += "[ \\t]+"
            } else {
                regex += Matcher.escape(String(c))
                rest.removeFirst()
            }
        }
        do {
            return (try Regex(regex), captures)
        } catch {
            throw FileCheck.Failure(directive: directive, message: "bad regular expression '\(regex)': \(error)")
        }
    }

    static func escape(_ literal: String) -> String {
        var out = ""
        for c in literal {
            if "\\^$.|?*+()[]{}/-#&~".contains(c) { out.append("\\") }
            out.append(c)
        }
        return out
    }
}

extension FileCheck {
    /// Splits a test file into cases at lines that are exactly `// -----`.
    public static func splitCases(_ text: String) -> [String] {
        var cases: [String] = []
        var current: [Substring] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.trimmingCharacters(in: " \t") == "// -----" {
                cases.append(current.joined(separator: "\n"))
                current = []
            } else {
                current.append(line)
            }
        }
        cases.append(current.joined(separator: "\n"))
        return cases.filter { !$0.trimmingSpaces.isEmpty }
    }

    /// The texts of `expected-error {{...}}` annotations in a case.
    public static func expectedErrors(in text: String) -> [String] {
        var out: [String] = []
        var rest = Substring(text)
        while let marker = rest.firstRange(of: "expected-error {{") {
            rest = rest[marker.upperBound...]
            guard let close = rest.firstRange(of: "}}") else { break }
            out.append(String(rest[..<close.lowerBound]))
            rest = rest[close.upperBound...]
        }
        return out
    }
}

extension Substring {
    func trimmingCharacters(in set: String) -> Substring {
        var s = self
        while let f = s.first, set.contains(f) { s.removeFirst() }
        while let l = s.last, set.contains(l) { s.removeLast() }
        return s
    }
}
