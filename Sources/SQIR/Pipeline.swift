/// One pass of a pipeline with the options given for it: `fold-constants{max-elements=64}`.
public struct PipelineElement: Sendable, CustomStringConvertible {
    public let passName: String
    public let options: PassOptions

    public init(passName: String, options: PassOptions = PassOptions()) {
        self.passName = passName
        self.options = options
    }

    /// The element as pipeline text; options appear as given, values in canonical form.
    public var description: String {
        options.given.isEmpty ? passName : "\(passName){\(options.pipelineText)}"
    }
}

/// A parsed pass pipeline. `description` prints it back as text that parses to the same
/// pipeline: `canonicalize-norms,fold-constants{max-elements=64},dce`.
public struct Pipeline: Sendable, CustomStringConvertible {
    public var elements: [PipelineElement]

    public init(_ elements: [PipelineElement] = []) {
        self.elements = elements
    }

    public var description: String { elements.map(\.description).joined(separator: ",") }

    /// Instantiates every pass (their `init(options:)` may reject values).
    public func makePasses(using registry: PassRegistry) throws -> [any Pass] {
        try elements.map { try registry.makePass(named: $0.passName, options: $0.options) }
    }
}

/// A malformed pipeline or option: a usage error (the CLI exits with status 2).
/// `description` is the exact message.
public enum PipelineError: Error, Equatable, CustomStringConvertible {
    case unknownPass(String, suggestion: String?, valid: [String])
    case unknownOption(pass: String, option: String, suggestion: String?, valid: [String])
    case invalidOptionValue(pass: String, option: String, value: String, expected: String)
    case duplicateOption(pass: String, option: String)
    case malformedOption(pass: String, text: String)
    case expectedPassName(column: Int, pipeline: String)
    case unbalancedBrace(column: Int, pipeline: String)
    case unexpectedCharacter(Character, column: Int, pipeline: String)

    public var description: String {
        switch self {
        case let .unknownPass(name, suggestion, valid):
            return "unknown pass '\(name)'" + Self.didYouMean(suggestion)
                + "; valid passes: " + valid.joined(separator: ", ")
        case let .unknownOption(pass, option, suggestion, valid):
            if valid.isEmpty { return "pass '\(pass)' takes no options (got '\(option)')" }
            return "unknown option '\(option)' for pass '\(pass)'" + Self.didYouMean(suggestion)
                + "; valid options: " + valid.joined(separator: ", ")
        case let .invalidOptionValue(pass, option, value, expected):
            return "invalid value '\(value)' for option '\(option)' of pass '\(pass)': expected \(expected)"
        case let .duplicateOption(pass, option):
            return "option '\(option)' is given twice for pass '\(pass)'"
        case let .malformedOption(pass, text):
            return "expected 'option=value' in the options of pass '\(pass)', got '\(text)'"
        case let .expectedPassName(column, pipeline):
            return "expected a pass name at column \(column) of pipeline '\(pipeline)'"
        case let .unbalancedBrace(column, pipeline):
            return "unbalanced '{' at column \(column) of pipeline '\(pipeline)'"
        case let .unexpectedCharacter(c, column, pipeline):
            return "unexpected '\(c)' at column \(column) of pipeline '\(pipeline)'"
        }
    }

    private static func didYouMean(_ suggestion: String?) -> String {
        suggestion.map { " (did you mean '\($0)'?)" } ?? ""
    }
}

/// Quoting of option values in pipeline text.
enum PipelineText {
    /// Values containing `,{}"` or spaces at either end are written as `"..."` with `\"` and
    /// `\\` escapes.
    static func quotedIfNeeded(_ value: String) -> String {
        let needsQuotes = value.contains { ",{}\"".contains($0) } || value != value.trimmingSpaces
        guard needsQuotes else { return value }
        return "\"" + value.replacingOccurrences("\\", "\\\\").replacingOccurrences("\"", "\\\"") + "\""
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return String(s)
    }

    func replacingOccurrences(_ target: String, _ replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
