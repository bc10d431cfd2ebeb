import SQIR
import Synchronization

/// The last inputs and outputs of one shape-arithmetic step, so a run whose inputs to
/// the step are the same as the last run's returns the same outputs without running it.
///
/// A KV-cache decoder spends most of its interpreter steps on the shape arithmetic an
/// exporter writes around every attention layer (`Shape → Gather → Unsqueeze → Concat →
/// Reshape`, ≈ 2 000 of SmolLM2's ≈ 3 400 steps per token). Those values depend only on
/// the shapes of a few tensors, most of which do not change from one decode step to the
/// next (the new token's [1, 1, 576] hidden state); the ones that follow the growing
/// cache length miss and run as before.
///
/// Exact: a step is memoized only if its op is a deterministic function of its inputs
/// (`memoizableOps`) and its inputs are shape values (outputs of `Shape`/`Size` or of
/// memoized steps) or plan constants (`Lowering`); a hit requires the same dtype, shape
/// and bytes of every input (`Shape` and `Size`: the same input shape). The outputs are
/// immutable tensors shared with the memo, so the run never recycles their buffers.
final class ShapeMemo: Sendable {
    /// Ops a memo may stand for: pure functions of their inputs, used by exporters on
    /// shape values.
    static let memoizableOps: Set<String> = [
        "Shape", "Size", "Gather", "Unsqueeze", "Squeeze", "Concat", "Slice", "Cast", "Reshape",
        "Add", "Sub", "Mul", "Div", "Neg", "Abs", "Min", "Max", "Mod", "Equal", "Less", "Greater",
        "LessOrEqual", "GreaterOrEqual", "Not", "And", "Or", "Where", "Range", "ConstantOfShape",
        "Expand", "Identity", "Floor", "Ceil", "ReduceProd", "ReduceSum", "ReduceMax", "ReduceMin",
        "Flatten", "Tile", "Transpose", "Sqrt",
    ]

    /// Inputs larger than this (bytes, not the same buffer as last time) are not compared:
    /// the step runs and the memo is left as it is.
    static let maxComparedBytes = 4096
    /// Outputs larger than this (bytes in all) are not kept.
    static let maxKeptBytes = 1 << 16

    /// `Shape` and `Size`: the output depends on the input's shape only, so only that is
    /// kept (not the input, which is an activation whose buffer the run should recycle).
    let shapeOnly: Bool

    private struct Entry {
        var inputs: [Tensor?]
        var inputShape: [Int]
        var outputs: [Tensor?]
    }
    private let entry = Mutex<Entry?>(nil)
    private let hitCount = Atomic<Int>(0)
    private let missCount = Atomic<Int>(0)

    /// Per input: whether it is a plan constant.
    let constantInputs: [Bool]

    init(opType: String, constantInputs: [Bool]) {
        shapeOnly = opType == "Shape" || opType == "Size"
        self.constantInputs = constantInputs
    }

    /// Runs served from the memo / computed, since the plan was built (for tests).
    var hits: Int { hitCount.load(ordering: .relaxed) }
    var misses: Int { missCount.load(ordering: .relaxed) }

    /// The outputs of the last run if `args` equal its inputs.
    func lookup(_ args: [Tensor?]) -> [Tensor?]? {
        let found: [Tensor?]? = entry.withLock { e in
            guard let e else { return nil }
            if shapeOnly {
                guard let x = args.first ?? nil, x.shape == e.inputShape else { return nil }
                return e.outputs
            }
            guard e.inputs.count == args.count else { return nil }
            for (old, new) in zip(e.inputs, args) {
                switch (old, new) {
                case (nil, nil): continue
                case let (a?, b?) where ShapeMemo.same(a, b): continue
                default: return nil
                }
            }
            return e.outputs
        }
        if found != nil { hitCount.add(1, ordering: .relaxed) } else { missCount.add(1, ordering: .relaxed) }
        return found
    }

    /// Keeps `outputs` as the result for `args` (unless they are too large to keep or compare).
    func store(_ args: [Tensor?], _ outputs: [Tensor?]) {
        var kept = 0
        for case let t? in outputs {
            guard t.dtype != .string else { return }
            kept += t.byteCount
        }
        guard kept <= ShapeMemo.maxKeptBytes else { return }
        if shapeOnly {
            guard let x = args.first ?? nil else { return }
            entry.withLock { $0 = Entry(inputs: [], inputShape: x.shape, outputs: outputs) }
            return
        }
        for (i, arg) in args.enumerated() {
            guard let t = arg else { continue }
            if t.dtype == .string { return }
            // A large input is compared by identity only, which a plan constant passes
            // (the same buffer every run); a large computed one is not worth keeping.
            if t.byteCount > ShapeMemo.maxComparedBytes && !(i < constantInputs.count && constantInputs[i]) { return }
        }
        entry.withLock { $0 = Entry(inputs: args, inputShape: [], outputs: outputs) }
    }

    /// Same dtype, shape and bytes (the same buffer is the common, cheap case).
    private static func same(_ a: Tensor, _ b: Tensor) -> Bool {
        guard a.dtype == b.dtype, a.dtype != .string, a.shape == b.shape else { return false }
        if a.storage === b.storage { return true }
        guard a.byteCount == b.byteCount, a.byteCount <= maxComparedBytes else { return false }
        return a.storage.bytes.elementsEqual(b.storage.bytes)
    }
}
