/// A graph transformation, declared once: its pipeline token, help, options and counters all
/// come from static properties, so registration, `--list-passes`, the pipeline parser and
/// docs/passes.md derive from one place.
///
/// Contract (as MLIR's): one entry point, no state carried from one run to the next, no
/// globals. Passes share data only through the graph and the `PassContext`. A pass that
/// changes nothing says so (`PassResult.unchanged`). A pass that finds the IR broken throws
/// an error naming the node; a pattern it merely declines to rewrite becomes a remark.
/// Graph input and output names never change. Dead nodes are left to `dce`.
///
/// ```swift
/// public struct StripIdentity: Pass {
///     public static let name = "strip-identity"
///     public static let summary = "Remove Identity nodes"
///     public static let description = "Replaces every use of an Identity's output by its input."
///     public init(options: PassOptions) {}
///     public func run(on model: Model, context: PassContext) throws -> PassResult { ... }
/// }
/// ```
public protocol Pass: SendableMetatype {
    /// The pipeline token, kebab-case; the pass's file in passes/ has the same name.
    static var name: String { get }
    /// One line for `--list-passes`.
    static var summary: String { get }
    /// What the pass matches and rewrites, in a few sentences (docs and `--help`).
    static var description: String { get }
    /// Options the pipeline may set (`name{option=value}`); default: none.
    static var options: [PassOptionDeclaration] { get }
    /// Pass-specific counters the pass reports in `PassResult.statistics`; default: none.
    static var statistics: [PassStatisticDeclaration] { get }

    /// Builds the pass from option values (defaults for options not given). Throw
    /// `PipelineError.invalidOptionValue` for a value of the right type but out of range.
    init(options: PassOptions) throws

    /// Runs once over `model`, mutating it in place.
    func run(on model: Model, context: PassContext) throws -> PassResult
}

extension Pass {
    public static var options: [PassOptionDeclaration] { [] }
    public static var statistics: [PassStatisticDeclaration] { [] }
}

/// A counter a pass reports (`canonicalize-norms` reports `layer-norms`), with its meaning.
public struct PassStatisticDeclaration: Sendable {
    public let name: String
    public let help: String
    public init(_ name: String, help: String) {
        self.name = name
        self.help = help
    }
}

/// Counters of one pass run. `nodesAdded` and `nodesRemoved` are filled in by the
/// `PassManager` (it counts nodes before and after); `nodesRewritten` (nodes changed in
/// place) and the named counters come from the pass.
public struct PassStatistics: Sendable, Equatable {
    public struct Counter: Sendable, Equatable {
        public let name: String
        public var value: Int
    }

    public var nodesAdded = 0
    public var nodesRemoved = 0
    public var nodesRewritten = 0
    /// Pass-specific counters in the order they were first set.
    public private(set) var counters: [Counter] = []

    public init() {}

    public subscript(counter name: String) -> Int {
        get { counters.first { $0.name == name }?.value ?? 0 }
        set {
            if let i = counters.firstIndex(where: { $0.name == name }) {
                counters[i].value = newValue
            } else {
                counters.append(Counter(name: name, value: newValue))
            }
        }
    }

    public mutating func increment(_ name: String, by amount: Int = 1) {
        self[counter: name] += amount
    }

    /// Adds another run's counts to these.
    public mutating func add(_ other: PassStatistics) {
        nodesAdded += other.nodesAdded
        nodesRemoved += other.nodesRemoved
        nodesRewritten += other.nodesRewritten
        for c in other.counters { increment(c.name, by: c.value) }
    }

    /// `+2 -18 ~0 nodes; layer-norms=2, rms-norms=0`
    public var summaryText: String {
        var s = "+\(nodesAdded) -\(nodesRemoved) ~\(nodesRewritten) nodes"
        if !counters.isEmpty {
            s += "; " + counters.map { "\($0.name)=\($0.value)" }.joined(separator: ", ")
        }
        return s
    }
}

/// What a pass run did: whether the model changed, and its counters.
public struct PassResult: Sendable, Equatable {
    public var changed: Bool
    public var statistics: PassStatistics

    public init(changed: Bool, statistics: PassStatistics = PassStatistics()) {
        self.changed = changed
        self.statistics = statistics
    }

    public static var unchanged: PassResult { PassResult(changed: false) }
}
