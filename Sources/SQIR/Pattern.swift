/// A declarative description of a value in the graph and how it was computed, in the spirit
/// of tinygrad's `UPat` and MLIR's DRR: op types, operands (recursively), constant operands,
/// use counts, attribute predicates, and named captures.
///
/// ```swift
/// // Mul(x, 1) or Mul(1, x), capturing x
/// Pattern.op("Mul", [.any("x"), .scalar(1)], commutative: true)
/// // Sqrt(ReduceMean(Pow(x, 2)) + eps) where the mean reduces the last axis only
/// Pattern.op("Sqrt", [.op("Add", [.op("ReduceMean", [.op("Pow", [.any("x"), .scalar(2)])])
///                                     .where(node: reducesLastAxisOnly), .constant("eps")])])
/// ```
/// A capture name bound twice must bind the same value (so `Mul(x, x)` is expressible).
/// Matching never mutates the graph; see `RewriteRule` for rewriting.
public struct Pattern: Sendable {
    indirect enum Kind: Sendable {
        /// Any present value.
        case any
        /// An omitted optional operand (`_`).
        case absent
        /// A value with known constant data (initializer or `Constant` node) accepted by the predicate.
        case constant(@Sendable (Tensor) -> Bool)
        /// A value produced by a node matching `OpPattern`.
        case op(OpPattern)
        /// The first alternative that matches.
        case oneOf([Pattern])
    }

    var kind: Kind
    var capture: String?
    var valuePredicates: [@Sendable (Value) -> Bool] = []

    init(_ kind: Kind, capture: String? = nil) {
        self.kind = kind
        self.capture = capture
    }
}

/// The node part of an op pattern.
struct OpPattern: Sendable {
    /// Accepted op types (empty: any op).
    var opTypes: [String]
    /// Domain of the op, canonical ("" = default ONNX domain; see `ONNXDomain`).
    var domain: String
    /// Operand patterns; nil accepts any operands.
    var operands: [Pattern]?
    /// For two operands: also try them swapped.
    var commutative: Bool
    /// Which output of the node the value must be (nil: any).
    var outputIndex: Int?
    var nodePredicates: [@Sendable (Node) -> Bool] = []
}

// MARK: building patterns

extension Pattern {
    /// Any value (not an omitted operand).
    public static var any: Pattern { Pattern(.any) }

    /// Any value, captured as `name`.
    public static func any(_ name: String) -> Pattern { Pattern(.any, capture: name) }

    /// An omitted optional operand (`_`, or a trailing input left out).
    public static var absent: Pattern { Pattern(.absent) }

    /// A value with known constant data (see `Value.knownConstant`), optionally filtered.
    public static func constant(_ name: String? = nil,
                                where predicate: @escaping @Sendable (Tensor) -> Bool = { _ in true }) -> Pattern {
        Pattern(.constant(predicate), capture: name)
    }

    /// A constant with exactly one element, equal to `value` (any numeric dtype, any rank).
    public static func scalar(_ value: Double, _ name: String? = nil) -> Pattern {
        constant(name) { $0.scalarDouble == value }
    }

    /// A value produced by an op of type `type` whose operands match `operands` (nil: any
    /// operands). `commutative` also tries two operands swapped.
    public static func op(_ type: String, _ operands: [Pattern]? = nil, commutative: Bool = false,
                          domain: String = "", capture name: String? = nil) -> Pattern {
        op(oneOf: [type], operands, commutative: commutative, domain: domain, capture: name)
    }

    /// Like `op(_:)`, accepting any of several op types.
    public static func op(oneOf types: [String], _ operands: [Pattern]? = nil, commutative: Bool = false,
                          domain: String = "", capture name: String? = nil) -> Pattern {
        Pattern(.op(OpPattern(opTypes: types, domain: ONNXDomain.canonical(domain), operands: operands,
                              commutative: commutative, outputIndex: nil)), capture: name)
    }

    /// The first of `alternatives` that matches.
    public static func oneOf(_ alternatives: Pattern...) -> Pattern { Pattern(.oneOf(alternatives)) }

    /// An optional operand: omitted (empty name, or a trailing input left out), or present and
    /// matching `inner`. E.g. ReduceMax's `axes` input (opset ≥ 18; older opsets write an
    /// attribute), a QuantizeLinear zero point. Captures in `inner` are unbound when omitted.
    public static func omittable(_ inner: Pattern) -> Pattern { .oneOf(.absent, inner) }

    /// `wrapper(inner)` or just `inner`: e.g. an optional Cast the exporter may have written.
    public static func optional(_ wrapper: String, around inner: Pattern) -> Pattern {
        .oneOf(.op(wrapper, [inner]), inner)
    }

    /// This pattern, capturing the matched value (and for op patterns the node) as `name`.
    public func captured(_ name: String) -> Pattern {
        var copy = self
        copy.capture = name
        return copy
    }

    /// The value must satisfy `predicate`.
    public func `where`(_ predicate: @escaping @Sendable (Value) -> Bool) -> Pattern {
        var copy = self
        copy.valuePredicates.append(predicate)
        return copy
    }

    /// The value has exactly one use and is not a graph output.
    public var singleUse: Pattern { uses(1) }

    /// The value has exactly `count` uses and is not a graph output.
    public func uses(_ count: Int) -> Pattern {
        self.where { v in v.uses.count == count && !v.isGraphOutput }
    }

    /// For op patterns: the producing node must satisfy `predicate` (attribute checks).
    public func `where`(node predicate: @escaping @Sendable (Node) -> Bool) -> Pattern {
        mapOp { $0.nodePredicates.append(predicate) }
    }

    /// For op patterns: the value must be output `index` of its node.
    public func output(_ index: Int) -> Pattern {
        mapOp { $0.outputIndex = index }
    }

    /// For op patterns: attribute `name` (absent reads as nil) must satisfy `predicate`.
    public func attribute(_ name: String, _ predicate: @escaping @Sendable (Attribute?) -> Bool) -> Pattern {
        self.where(node: { predicate($0[attribute: name]) })
    }

    /// For op patterns: int attribute `name` equals `value` (`defaultValue` when absent).
    public func attribute(_ name: String, equals value: Int, default defaultValue: Int? = nil) -> Pattern {
        attribute(name) { ($0?.int ?? defaultValue) == value }
    }

    private func mapOp(_ change: (inout OpPattern) -> Void) -> Pattern {
        var copy = self
        switch kind {
        case .op(var op):
            change(&op)
            copy.kind = .op(op)
        case .oneOf(let alternatives):
            copy.kind = .oneOf(alternatives.map { $0.mapOp(change) })
        case .any, .absent, .constant:
            break
        }
        return copy
    }

    /// Op types a root pattern can start with; nil when it can match any op.
    var rootOpTypes: Set<String>? {
        switch kind {
        case .op(let op): return op.opTypes.isEmpty ? nil : Set(op.opTypes)
        case .oneOf(let alternatives):
            var all = Set<String>()
            for a in alternatives {
                guard let types = a.rootOpTypes else { return nil }
                all.formUnion(types)
            }
            return all
        case .any, .constant, .absent: return []
        }
    }
}

extension Value {
    /// True when a node produces the value and it is an output of that node's graph.
    /// (Graph inputs and initializers report false.)
    public var isGraphOutput: Bool {
        guard let graph = producer?.graph else { return false }
        return graph.outputs.contains { $0 === self }
    }
}
