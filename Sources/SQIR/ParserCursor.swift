/// An error in IR text, at a 1-based line and column (columns count characters).
public struct IRParseError: Error, CustomStringConvertible, Equatable, Sendable {
    public var file: String?
    public var line: Int
    public var column: Int
    public var message: String

    public init(file: String? = nil, line: Int, column: Int, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.message = message
    }

    /// `file:line:column: message` (`<input>` when no file is known).
    public var description: String { "\(file ?? "<input>"):\(line):\(column): \(message)" }
}

/// A position in the input, as a byte offset.
struct SourceOffset {
    let value: Int
}

/// A byte cursor over IR text with the lexical helpers the parser needs.
struct ParserCursor {
    let bytes: [UInt8]
    let file: String?
    var index = 0

    init(_ text: String, file: String?) {
        bytes = Array(text.utf8)
        self.file = file
    }

    var atEnd: Bool { index >= bytes.count }
    var peek: UInt8? { index < bytes.count ? bytes[index] : nil }
    var offset: SourceOffset { SourceOffset(value: index) }

    func byte(at i: Int) -> UInt8? { i < bytes.count ? bytes[i] : nil }

    /// An error at `offset` (default: the current position).
    func error(_ message: String, at offset: SourceOffset? = nil) -> IRParseError {
        let target = min(offset?.value ?? index, bytes.count)
        var line = 1, lineStart = 0
        for i in 0..<target where bytes[i] == 10 {
            line += 1
            lineStart = i + 1
        }
        let column = String(decoding: bytes[lineStart..<target], as: UTF8.self).count + 1
        return IRParseError(file: file, line: line, column: column, message: message)
    }

    /// Skips spaces, newlines and `//` comments.
    mutating func skipTrivia() {
        while let c = peek {
            if c == 32 || c == 9 || c == 10 || c == 13 {
                index += 1
            } else if c == 47 && byte(at: index + 1) == 47 {
                while let d = peek, d != 10 { index += 1 }
            } else {
                return
            }
        }
    }

    /// Skips trivia, then consumes `literal` if it comes next.
    mutating func consume(_ literal: String) -> Bool {
        skipTrivia()
        let want = Array(literal.utf8)
        guard index + want.count <= bytes.count, Array(bytes[index..<index + want.count]) == want else { return false }
        index += want.count
        return true
    }

    /// True when `word` comes next and is not the start of a longer bare name.
    func startsWithWord(_ word: String) -> Bool {
        let want = Array(word.utf8)
        guard index + want.count <= bytes.count, Array(bytes[index..<index + want.count]) == want else { return false }
        guard let after = byte(at: index + want.count) else { return true }
        return !ParserCursor.isBareNameByte(after)
    }

    mutating func expect(_ literal: String, _ what: String? = nil) throws {
        guard consume(literal) else {
            throw error("expected '\(literal)'" + (what.map { " \($0)" } ?? "") + ", found \(describeNext())")
        }
    }

    /// A short description of the next token, for error messages.
    func describeNext() -> String {
        guard !atEnd else { return "end of input" }
        var end = index
        while end < bytes.count, end - index < 20, bytes[end] != 10, bytes[end] != 32 { end += 1 }
        if end == index { end = index + 1 }
        return "'" + String(decoding: bytes[index..<end], as: UTF8.self) + "'"
    }

    static func isBareNameByte(_ c: UInt8) -> Bool {
        (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 95 || c == 46 || c == 45 || c == 47
    }

    /// A name as the printer writes it: bare `[A-Za-z0-9_.\-/]+` or a quoted string. Does not
    /// skip trivia first (a name may start with `/`).
    mutating func name(_ what: String) throws -> String {
        if peek == 34 { return try quotedString() }
        let start = index
        while let c = peek, ParserCursor.isBareNameByte(c) { index += 1 }
        guard index > start else { throw error("expected \(what), found \(describeNext())") }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    /// A `"..."` literal with `\"`, `\\`, `\n`, `\t` and `\u{XX}` escapes.
    mutating func quotedString() throws -> String {
        let start = offset
        guard peek == 34 else { throw error("expected a string literal, found \(describeNext())") }
        index += 1
        var out: [UInt8] = []
        while let c = peek {
            index += 1
            switch c {
            case 34:
                return String(decoding: out, as: UTF8.self)
            case 92:
                guard let e = peek else { break }
                index += 1
                switch e {
                case 110: out.append(10)
                case 116: out.append(9)
                case 117:
                    guard peek == 123 else { throw error("expected '{' after \\u") }
                    index += 1
                    let digitsStart = index
                    while let d = peek, d != 125 { index += 1 }
                    guard peek == 125, let scalarValue = UInt32(String(decoding: bytes[digitsStart..<index], as: UTF8.self), radix: 16),
                          let scalar = Unicode.Scalar(scalarValue) else { throw error("bad \\u{...} escape") }
                    index += 1
                    out.append(contentsOf: Array(String(Character(scalar)).utf8))
                default: out.append(e)
                }
            default:
                out.append(c)
            }
        }
        throw error("unterminated string literal", at: start)
    }

    /// A number-like token: `[-+0-9A-Za-z._]+` (`-1`, `1e-05`, `nan`, `-inf`, `0x3c00`).
    mutating func numberToken() -> String {
        skipTrivia()
        let start = index
        while let c = peek, ParserCursor.isBareNameByte(c) || c == 43 { index += 1 }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    /// An integer (optionally negative).
    mutating func integer(_ what: String) throws -> Int {
        let at = offset
        let token = numberToken()
        guard let v = Int(token) else { throw error("expected \(what), found '\(token)'", at: at) }
        return v
    }
}
