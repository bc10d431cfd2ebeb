/// A type a pass option can have. The pipeline parser reads it from text
/// (`fold-constants{max-elements=1024}`), the pipeline printer writes it back, and help and
/// docs show `optionTypeName`.
///
/// Bool, Int, Double and String conform; an enum with String raw values gets the conformance
/// by declaring `PassOptionChoice`. Other types (e.g. "a float or `auto`") conform directly.
public protocol PassOptionValue: Sendable {
    /// How help and error messages name the type: `int`, `float`, `bool`, `string`, `a|b|c`.
    static var optionTypeName: String { get }
    /// Parses pipeline text; nil when the text is not a value of this type.
    init?(optionText: String)
    /// The canonical text; `init(optionText: v.optionText)` gives `v` back.
    var optionText: String { get }
}

extension Bool: PassOptionValue {
    public static var optionTypeName: String { "bool" }
    public init?(optionText: String) {
        switch optionText {
        case "true", "1": self = true
        case "false", "0": self = false
        default: return nil
        }
    }
    public var optionText: String { self ? "true" : "false" }
}

extension Int: PassOptionValue {
    public static var optionTypeName: String { "int" }
    public init?(optionText: String) { self.init(optionText) }
    public var optionText: String { String(self) }
}

extension Double: PassOptionValue {
    public static var optionTypeName: String { "float" }
    public init?(optionText: String) {
        guard let v = Double(optionText), v.isFinite else { return nil }
        self = v
    }
    public var optionText: String { description }
}

extension String: PassOptionValue {
    public static var optionTypeName: String { "string" }
    public init?(optionText: String) { self = optionText }
    public var optionText: String { self }
}

/// An option whose value is one of a fixed set of words: declare
/// `enum Mode: String, CaseIterable, PassOptionChoice { case auto, fast }`.
public protocol PassOptionChoice: PassOptionValue, CaseIterable, RawRepresentable where RawValue == String {}

extension PassOptionChoice {
    public static var optionTypeName: String { allCases.map(\.rawValue).joined(separator: "|") }
    public init?(optionText: String) { self.init(rawValue: optionText) }
    public var optionText: String { rawValue }
}

/// A typed option a pass declares once, as a static property:
///
/// ```swift
/// static let maxElements = PassOption("max-elements", default: 65536,
///                                     help: "largest folded output, in elements")
/// static var options: [PassOptionDeclaration] { [maxElements.declaration] }
/// ...
/// init(options: PassOptions) { maxElements = options[Self.maxElements] }
/// ```
public struct PassOption<Value: PassOptionValue>: Sendable {
    public let name: String
    public let defaultValue: Value
    public let help: String

    public init(_ name: String, default defaultValue: Value, help: String) {
        self.name = name
        self.defaultValue = defaultValue
        self.help = help
    }

    /// The untyped form the registry, the pipeline parser and the docs use.
    public var declaration: PassOptionDeclaration {
        PassOptionDeclaration(name: name, typeName: Value.optionTypeName, defaultValue: defaultValue,
                              help: help, parse: { Value(optionText: $0) })
    }
}

/// An option as the registry sees it: name, type name, default and help, plus its parser.
public struct PassOptionDeclaration: Sendable {
    public let name: String
    public let typeName: String
    public let defaultValue: any PassOptionValue
    public let help: String
    let parse: @Sendable (String) -> (any PassOptionValue)?

    public var defaultText: String { defaultValue.optionText }

    /// Parses `text` as this option's type (nil when it is not one).
    public func parseValue(_ text: String) -> (any PassOptionValue)? { parse(text) }
}

/// Option values for one pass instance: the values given in the pipeline, in the order
/// given; options not given read as their declared defaults.
public struct PassOptions: Sendable {
    public struct Entry: Sendable {
        public let name: String
        public let value: any PassOptionValue
    }

    public private(set) var given: [Entry] = []

    public init() {}

    /// The value of `option`: as given, else its default.
    public subscript<Value: PassOptionValue>(_ option: PassOption<Value>) -> Value {
        given.first { $0.name == option.name }.flatMap { $0.value as? Value } ?? option.defaultValue
    }

    /// True when the pipeline gave this option explicitly.
    public func isGiven(_ name: String) -> Bool { given.contains { $0.name == name } }

    /// Sets (or replaces) the value of option `name`.
    public mutating func set(_ name: String, _ value: any PassOptionValue) {
        if let i = given.firstIndex(where: { $0.name == name }) {
            given[i] = Entry(name: name, value: value)
        } else {
            given.append(Entry(name: name, value: value))
        }
    }

    /// Sets a typed option, for building pipelines in code.
    public mutating func set<Value: PassOptionValue>(_ option: PassOption<Value>, _ value: Value) {
        set(option.name, value)
    }

    /// A copy with `option` set to `value`.
    public func setting<Value: PassOptionValue>(_ option: PassOption<Value>, _ value: Value) -> PassOptions {
        var copy = self
        copy.set(option, value)
        return copy
    }

    /// `name=value` pairs as the pipeline syntax writes them.
    public var pipelineText: String {
        given.map { "\($0.name)=\(PipelineText.quotedIfNeeded($0.value.optionText))" }.joined(separator: ",")
    }
}
