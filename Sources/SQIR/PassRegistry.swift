/// A registered pass: its static metadata plus a factory.
public struct PassInfo: Sendable {
    public let name: String
    public let summary: String
    public let description: String
    public let options: [PassOptionDeclaration]
    public let statistics: [PassStatisticDeclaration]
    /// The Swift type's name (for messages).
    public let typeName: String
    let make: @Sendable (PassOptions) throws -> any Pass
    let provide: @Sendable (PassRequirement) -> PassOptions?

    init<P: Pass>(_ type: P.Type) {
        name = P.name
        summary = P.summary
        description = P.description
        options = P.options
        statistics = P.statistics
        typeName = String(describing: P.self)
        make = { try P(options: $0) }
        provide = { P.options(providing: $0) }
    }

    public func option(named name: String) -> PassOptionDeclaration? {
        options.first { $0.name == name }
    }

    /// Builds the pass with `options`.
    public func makePass(options: PassOptions = PassOptions()) throws -> any Pass {
        try make(options)
    }
}

/// The passes a pipeline may name. A value, not a global: built-ins live in
/// `PassRegistry.builtin` (passes/Registry.swift); a tool adds its own passes to a copy.
///
/// ```swift
/// var registry = PassRegistry.builtin
/// registry.register(StripMultiplyByOne.self)
/// ```
public struct PassRegistry: Sendable {
    /// Registered passes in registration order.
    public private(set) var passes: [PassInfo] = []

    public init() {}

    /// Registers `type` under `type.name`. Registering a name twice is a programming error
    /// (two passes would answer to one token) and stops the program with a message.
    public mutating func register<P: Pass>(_ type: P.Type) {
        precondition(!passes.contains { $0.name == P.name },
                     "pass '\(P.name)' registered twice (\(String(describing: P.self)))")
        precondition(PassRegistry.isValidPassName(P.name),
                     "pass name '\(P.name)' is not kebab-case ([a-z0-9-])")
        passes.append(PassInfo(type))
    }

    /// A copy with `type` registered.
    public func registering<P: Pass>(_ type: P.Type) -> PassRegistry {
        var copy = self
        copy.register(type)
        return copy
    }

    public func info(named name: String) -> PassInfo? {
        passes.first { $0.name == name }
    }

    /// All names, sorted.
    public var names: [String] { passes.map(\.name).sorted() }

    /// The first registered pass that provides `requirement`, with the options it needs for
    /// it (`upgrade-opset{to=21}` for `.minimumOpset(21)`); nil when no pass does.
    public func provider(for requirement: PassRequirement) -> PipelineElement? {
        for info in passes {
            if let options = info.provide(requirement) { return PipelineElement(passName: info.name, options: options) }
        }
        return nil
    }

    /// True when the pass named `name` provides `requirement` (with whatever options).
    public func provides(_ name: String, _ requirement: PassRequirement) -> Bool {
        info(named: name)?.provide(requirement) != nil
    }

    /// Builds a pass by name (options already parsed); throws `PipelineError.unknownPass`.
    public func makePass(named name: String, options: PassOptions = PassOptions()) throws -> any Pass {
        guard let info = info(named: name) else {
            throw PipelineError.unknownPass(name, suggestion: suggestion(for: name), valid: names)
        }
        return try info.makePass(options: options)
    }

    /// The registered name closest to `name` (edit distance at most 1/3 of its length, at
    /// least 2), for "did you mean".
    public func suggestion(for name: String) -> String? {
        PassRegistry.closest(to: name, among: names)
    }

    static func isValidPassName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 45 }
    }

    /// The candidate nearest to `word` by edit distance, if near enough to be a typo.
    static func closest(to word: String, among candidates: [String]) -> String? {
        closestMatch(word, in: candidates)
    }
}

/// The candidate with the smallest edit distance to `word` (ties: the alphabetically first), if
/// it is close enough to be a typo: at most max(2, |word| / 3) edits. Used for "did you mean"
/// in pipeline and command-line errors.
public func closestMatch(_ word: String, in candidates: [String]) -> String? {
    let scored = candidates.map { ($0, editDistance(word, $0)) }.min { $0.1 < $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }
    guard let (best, distance) = scored, distance <= max(2, word.count / 3) else { return nil }
    return best
}

/// Levenshtein distance over characters.
public func editDistance(_ a: String, _ b: String) -> Int {
    let x = Array(a), y = Array(b)
    if x.isEmpty { return y.count }
    if y.isEmpty { return x.count }
    var previous = Array(0...y.count)
    var current = [Int](repeating: 0, count: y.count + 1)
    for i in 1...x.count {
        current[0] = i
        for j in 1...y.count {
            let substitution = previous[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1)
            current[j] = min(substitution, previous[j] + 1, current[j - 1] + 1)
        }
        swap(&previous, &current)
    }
    return previous[y.count]
}
