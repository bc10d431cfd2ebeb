import SQIR

/// The kernel chosen for one node when the plan is built. It holds the node's parsed
/// attributes and prepared constant inputs (e.g. packed weights) and is reused by every
/// run, possibly from several threads at once: kernels keep no mutable state.
protocol OpKernel: Sendable {
    /// `inputs[i]` is nil for an omitted optional input. Returns one entry per node
    /// output (nil only for an omitted optional output).
    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?]

    /// Constant inputs the kernel has prepared for itself (e.g. a packed weight): the plan
    /// passes nil for them at run time and need not keep the original tensor.
    var preparedInputs: Set<Int> { get }
}

extension OpKernel {
    var preparedInputs: Set<Int> { [] }
}

/// Bytes of packed weights a plan may still prepare while it is lowered (one lowering,
/// one thread).
final class PackBudget {
    var remaining: Int
    init(_ bytes: Int) { remaining = bytes }
}

/// What a kernel factory may look at: the node, the opset it was written against, and
/// the constant inputs known at plan time (initializers and folded values).
struct NodeLowering {
    let node: Node
    /// Version of the node's domain imported by the model.
    let opset: Int
    let constantOf: (Value) -> Tensor?
    /// What is left of `PlanOptions.packedWeightBytes` (nil: no limit).
    var packBudget: PackBudget? = nil

    /// Whether the kernel may pack a constant weight of `elements` float32 values now; if so
    /// its bytes are taken from the plan's budget.
    func reservePackedWeights(elements: Int) -> Bool {
        guard let packBudget else { return true }
        let (bytes, overflow) = elements.multipliedReportingOverflow(by: MemoryLayout<Float>.stride)
        guard !overflow, bytes <= packBudget.remaining else { return false }
        packBudget.remaining -= bytes
        return true
    }

    var inputCount: Int { node.inputs.count }
    var outputCount: Int { node.outputs.count }

    func hasInput(_ i: Int) -> Bool { node.input(i) != nil }
    func hasOutput(_ i: Int) -> Bool { node.output(i) != nil }

    /// Input `i` if it is known at plan time.
    func constantInput(_ i: Int) -> Tensor? {
        node.input(i).flatMap(constantOf)
    }

    func int(_ name: String, default value: Int) throws -> Int {
        guard let attr = node[attribute: name] else { return value }
        guard let v = attr.int else { throw OpError("attribute '\(name)' must be an int") }
        return v
    }

    func optionalInt(_ name: String) throws -> Int? {
        guard let attr = node[attribute: name] else { return nil }
        guard let v = attr.int else { throw OpError("attribute '\(name)' must be an int") }
        return v
    }

    func float(_ name: String, default value: Float) throws -> Float {
        guard let attr = node[attribute: name] else { return value }
        guard let v = attr.float else { throw OpError("attribute '\(name)' must be a float") }
        return v
    }

    func ints(_ name: String) throws -> [Int]? {
        guard let attr = node[attribute: name] else { return nil }
        guard let v = attr.ints else {
            if let single = attr.int { return [single] }
            throw OpError("attribute '\(name)' must be a list of ints")
        }
        return v
    }

    func string(_ name: String, default value: String) throws -> String {
        guard let attr = node[attribute: name] else { return value }
        guard let v = attr.string else { throw OpError("attribute '\(name)' must be a string") }
        return v
    }

    func tensor(_ name: String) throws -> Tensor? {
        guard let attr = node[attribute: name] else { return nil }
        guard let v = attr.tensor else { throw OpError("attribute '\(name)' must be a tensor") }
        return v
    }

    /// An ONNX dtype attribute (Cast `to`, QuantizeLinear `output_dtype`).
    func dtype(_ name: String) throws -> DType? {
        guard let raw = try optionalInt(name) else { return nil }
        guard let t = DType(rawValue: Int32(truncatingIfNeeded: raw)) else {
            throw OpError("attribute '\(name)' names an unsupported element type (\(raw))")
        }
        return t
    }
}

typealias KernelFactory = @Sendable (NodeLowering) throws -> any OpKernel

/// Resolves a possibly negative axis against `rank`.
func normalizedAxis(_ axis: Int, rank: Int, _ what: String = "axis") throws -> Int {
    let a = axis < 0 ? axis + rank : axis
    guard a >= 0 && a < rank else { throw OpError("\(what) \(axis) is out of range for rank \(rank)") }
    return a
}

/// Input `i`, which the op requires.
func required(_ inputs: [Tensor?], _ i: Int, _ what: String = "input") throws -> Tensor {
    guard i < inputs.count, let t = inputs[i] else { throw OpError("missing required \(what) \(i)") }
    return t
}

/// A kernel written as a closure (ops with little to prepare).
struct ClosureKernel: OpKernel {
    let body: @Sendable ([Tensor?], BufferPool) throws -> [Tensor?]
    init(_ body: @escaping @Sendable ([Tensor?], BufferPool) throws -> [Tensor?]) { self.body = body }
    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] { try body(inputs, pool) }
}
