/// Parses pipeline text against a registry: `a,b{opt=v,opt2=v2},c`.
///
/// Grammar (spaces around tokens are ignored):
/// ```
/// pipeline := "" | element ("," element)*
/// element  := pass-name ("{" [option ("," option)*] "}")?
/// option   := name "=" (bare-value | "\"" quoted-value "\"")
/// ```
/// A bare value runs to the next `,` or `}`; a quoted value may hold them (`\"`, `\\` escape).
/// Pass names, option names and value types are checked here, so a pipeline that parses
/// only fails later if a pass's `init(options:)` rejects a value's range.
public struct PipelineParser {
    public let registry: PassRegistry

    public init(registry: PassRegistry) {
        self.registry = registry
    }

    public func parse(_ text: String) throws(PipelineError) -> Pipeline {
        var scanner = Scanner(text: text)
        var elements: [PipelineElement] = []
        scanner.skipSpaces()
        if scanner.atEnd { return Pipeline() }
        while true {
            elements.append(try parseElement(&scanner))
            scanner.skipSpaces()
            guard let c = scanner.peek else { break }
            if c == "," {
                scanner.advance()
                continue
            }
            throw .unexpectedCharacter(c, column: scanner.column, pipeline: text)
        }
        return Pipeline(elements)
    }

    private func parseElement(_ scanner: inout Scanner) throws(PipelineError) -> PipelineElement {
        scanner.skipSpaces()
        let nameColumn = scanner.column
        let name = scanner.take { !",{} \t".contains($0) }
        guard !name.isEmpty else {
            if let c = scanner.peek, c == "}" {
                throw .unexpectedCharacter(c, column: scanner.column, pipeline: scanner.text)
            }
            throw .expectedPassName(column: nameColumn, pipeline: scanner.text)
        }
        guard let info = registry.info(named: name) else {
            throw .unknownPass(name, suggestion: registry.suggestion(for: name), valid: registry.names)
        }
        scanner.skipSpaces()
        var options = PassOptions()
        guard scanner.peek == "{" else { return PipelineElement(passName: name, options: options) }
        let braceColumn = scanner.column
        scanner.advance()
        scanner.skipSpaces()
        if scanner.peek == "}" {
            scanner.advance()
            return PipelineElement(passName: name, options: options)
        }
        while true {
            scanner.skipSpaces()
            let key = scanner.take { !"=,}".contains($0) }.trimmingSpaces
            guard let separator = scanner.peek else { throw .unbalancedBrace(column: braceColumn, pipeline: scanner.text) }
            guard separator == "=" else { throw .malformedOption(pass: name, text: key) }
            scanner.advance()
            scanner.skipSpaces()
            let value: String
            if scanner.peek == "\"" {
                guard let quoted = scanner.takeQuoted() else {
                    throw .unbalancedBrace(column: braceColumn, pipeline: scanner.text)
                }
                value = quoted
            } else {
                value = scanner.take { !",}".contains($0) }.trimmingSpaces
            }
            try setOption(key, value, pass: info, into: &options)
            scanner.skipSpaces()
            guard let next = scanner.peek else { throw .unbalancedBrace(column: braceColumn, pipeline: scanner.text) }
            scanner.advance()
            if next == "}" { break }
            if next != "," { throw .unexpectedCharacter(next, column: scanner.column - 1, pipeline: scanner.text) }
        }
        return PipelineElement(passName: name, options: options)
    }

    private func setOption(_ key: String, _ value: String, pass: PassInfo,
                           into options: inout PassOptions) throws(PipelineError) {
        guard let declaration = pass.option(named: key) else {
            let valid = pass.options.map(\.name)
            throw .unknownOption(pass: pass.name, option: key,
                                 suggestion: PassRegistry.closest(to: key, among: valid), valid: valid)
        }
        guard !options.isGiven(key) else { throw .duplicateOption(pass: pass.name, option: key) }
        guard let parsed = declaration.parseValue(value) else {
            throw .invalidOptionValue(pass: pass.name, option: key, value: value, expected: declaration.typeName)
        }
        options.set(key, parsed)
    }
}

/// A cursor over pipeline text that knows its 1-based column.
private struct Scanner {
    let text: String
    private let characters: [Character]
    private var index = 0

    init(text: String) {
        self.text = text
        self.characters = Array(text)
    }

    var atEnd: Bool { index >= characters.count }
    var peek: Character? { atEnd ? nil : characters[index] }
    var column: Int { index + 1 }

    mutating func advance() { index += 1 }

    mutating func skipSpaces() {
        while let c = peek, c == " " || c == "\t" || c == "\n" { index += 1 }
    }

    mutating func take(while accept: (Character) -> Bool) -> String {
        let start = index
        while let c = peek, accept(c) { index += 1 }
        return String(characters[start..<index])
    }

    /// A `"..."` value with `\"` and `\\` escapes; nil when the closing quote is missing.
    mutating func takeQuoted() -> String? {
        index += 1
        var out = ""
        while let c = peek {
            index += 1
            if c == "\"" { return out }
            if c == "\\", let escaped = peek {
                index += 1
                out.append(escaped)
            } else {
                out.append(c)
            }
        }
        return nil
    }
}
