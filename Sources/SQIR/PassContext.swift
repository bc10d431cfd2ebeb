/// A key for a typed slot in the `PassContext`, declared by whoever owns the data:
///
/// ```swift
/// public enum CalibrationStatisticsKey: PassContextKey {
///     public typealias Value = CalibrationStatistics
/// }
/// context[CalibrationStatisticsKey.self] = statistics     // calibrate writes
/// let stats = context[CalibrationStatisticsKey.self]       // smooth reads (nil if absent)
/// ```
public protocol PassContextKey {
    associatedtype Value
}

/// A message a pass leaves for the user: a warning; a note on what the pipeline did on its
/// own (a step it inserted); or a remark explaining why a pass did or did not rewrite
/// something (`notifyMatchFailure` in MLIR terms).
public struct Diagnostic: Sendable, Equatable, CustomStringConvertible {
    public enum Severity: String, Sendable {
        case warning, note, remark
    }

    public var severity: Severity
    public var message: String
    /// The pass that emitted it (filled in by the context).
    public var pass: String?
    /// The node or value it is about (`node 'n' (Op)`).
    public var location: String?

    public init(_ severity: Severity, _ message: String, pass: String? = nil, location: String? = nil) {
        self.severity = severity
        self.message = message
        self.pass = pass
        self.location = location
    }

    /// `warning: [fold-constants] node 'n' (Cast): message`
    public var description: String {
        var s = "\(severity.rawValue): "
        if let pass { s += "[\(pass)] " }
        if let location { s += "\(location): " }
        return s + message
    }
}

/// State shared by the passes of one pipeline run: diagnostics, the manager's instrumentation
/// settings, and typed slots (`PassContextKey`) through which passes hand data to later passes
/// (calibration statistics, an evaluator for constant folding, ...). Never global: each run
/// makes its own context.
public final class PassContext {
    public private(set) var diagnostics: [Diagnostic] = []
    /// Called for each diagnostic as it is emitted (e.g. the CLI prints remarks live).
    public var onDiagnostic: ((Diagnostic) -> Void)?
    /// The running pass (set by the `PassManager`).
    public internal(set) var currentPass: String?
    /// The settings of the manager running the pipeline (`verifyEach`, printing, timing).
    public internal(set) var instrumentation = PassInstrumentation()

    private var slots: [ObjectIdentifier: Any] = [:]

    public init() {}

    public subscript<Key: PassContextKey>(_ key: Key.Type) -> Key.Value? {
        get { slots[ObjectIdentifier(key)] as? Key.Value }
        set { slots[ObjectIdentifier(key)] = newValue }
    }

    public func emit(_ diagnostic: Diagnostic) {
        var d = diagnostic
        if d.pass == nil { d.pass = currentPass }
        diagnostics.append(d)
        onDiagnostic?(d)
    }

    public func warning(_ message: String, node: Node? = nil) {
        emit(Diagnostic(.warning, message, location: node.map(IRError.describe)))
    }

    public func note(_ message: String, node: Node? = nil) {
        emit(Diagnostic(.note, message, location: node.map(IRError.describe)))
    }

    public func remark(_ message: String, node: Node? = nil) {
        emit(Diagnostic(.remark, message, location: node.map(IRError.describe)))
    }

    /// Diagnostics emitted by one pass.
    public func diagnostics(of pass: String) -> [Diagnostic] {
        diagnostics.filter { $0.pass == pass }
    }
}
