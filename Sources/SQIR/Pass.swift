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
    /// The options with which this pass provides `requirement` when the pipeline schedules
    /// it for another pass (`upgrade-opset` provides `.minimumOpset(n)` as `to=n`); nil when
    /// it does not provide it (the default).
    static func options(providing requirement: PassRequirement) -> PassOptions?

    /// Builds the pass from option values (defaults for options not given). Throw
    /// `PipelineError.invalidOptionValue` for a value of the right type but out of range.
    init(options: PassOptions) throws

    /// What this pass, with its options, needs before it runs on `model`, so that the
    /// pipeline runs the passes providing it as steps of their own (visible to
    /// `--time-passes`, `--print-ir-after` and the summary) instead of the pass doing their
    /// work inside itself. The `PassManager` asks right before the pass runs, on the model as
    /// the earlier passes left it, and provides `.minimumOpset`; the CLI asks on the input
    /// model and provides `.calibrationStatistics` (it inserts `calibrate`). Default: none.
    func requirements(for model: Model) -> [PassRequirement]

    /// Runs once over `model`, mutating it in place.
    func run(on model: Model, context: PassContext) throws -> PassResult
}

extension Pass {
    public static var options: [PassOptionDeclaration] { [] }
    public static var statistics: [PassStatisticDeclaration] { [] }
    public static func options(providing requirement: PassRequirement) -> PassOptions? { nil }
    public func requirements(for model: Model) -> [PassRequirement] { [] }
}

/// Something a pass needs before it runs, declared by the pass (`Pass.requirements(for:)`)
/// and provided by another registered pass (`Pass.options(providing:)`) that the pipeline
/// runs first, as a step of its own.
public enum PassRequirement: Sendable, Hashable, CustomStringConvertible {
    /// The model imports at least this default-domain opset (`quantize` writes opset-21
    /// Q/DQ). Provided by `upgrade-opset{to=N}`, which the `PassManager` runs when the model's
    /// opset is lower.
    case minimumOpset(Int)
    /// Calibration statistics are in the `PassContext` (`smooth`, `quantize{policy=O3}`).
    /// Provided by `calibrate`, which the CLI inserts before the first pass needing them
    /// unless the pipeline calibrates earlier or statistics are loaded (`--load-calib`).
    case calibrationStatistics

    /// `opset 21`, `calibration statistics`
    public var description: String {
        switch self {
        case .minimumOpset(let version): return "opset \(version)"
        case .calibrationStatistics: return "calibration statistics"
        }
    }

    /// Why `model` does not meet the requirement (`the model imports opset 17`); nil when it
    /// does, and for requirements on the pass context rather than the model (statistics),
    /// which whoever fills the context provides.
    public func unmetReason(in model: Model) -> String? {
        switch self {
        case .minimumOpset(let version):
            let imported = model.opsetVersion("") ?? 1
            return imported < version ? "the model imports opset \(imported)" : nil
        case .calibrationStatistics:
            return nil
        }
    }
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

    /// The result of a pattern pass: changed when any rule applied, with the number of
    /// rewrites in the counter named `counter` (`RewritePass` reports its `rewriteCounter`).
    public init(rewrites summary: RewriteSummary, counter: String) {
        self.init(changed: summary.total > 0)
        statistics[counter: counter] = summary.total
    }
}
