import SQIR
import Synchronization

/// How a plan is built.
public struct PlanOptions: Sendable {
    /// Evaluate nodes whose inputs are all constant once, when the plan is built.
    public var foldConstants: Bool = true
    /// Largest single tensor a run may allocate (guards against shapes computed from
    /// user data that would exhaust memory).
    public var maxTensorBytes: Int = 8 << 30
    /// Run `DQ(Q(x)) x DQ(W)` MatMul/Gemm patterns as int8 GEMMs (when the int8 kernels
    /// support the pattern); false keeps the float reference path.
    public var lowerInt8: Bool = true
    /// Buffers freed during a run are kept (up to this many bytes) for the next run, so
    /// repeated runs (calibration, benchmarks) do not pay for fresh memory each time.
    public var bufferCacheBytes: Int = 2 << 30
    /// Run the chains `ElementwiseFusion` recognizes (exported GELU, SiLU, SwiGLU, RMSNorm,
    /// rotary embedding, scaled softmax, masked attention) as one step each; false runs them
    /// node by node.
    public var fuseElementwise: Bool = true
    /// Values an observer will ask for: no fusion absorbs the node that computes them
    /// (e.g. `sqopt verify --layerwise` keeps every MatMul output observable).
    public var observable: Set<String> = []
    /// Largest total of weights packed at plan time, in bytes of float32. A constant
    /// MatMul/Gemm weight is packed once into float32 panels: that costs its size again (a
    /// float16 weight twice its size) on top of the model. Weights past this budget (in node
    /// order) are widened and packed at every run instead, into buffers the next layer
    /// reuses: memory stays at the model's size plus one layer, at some cost in speed.
    /// Default: no limit. `calibrate` uses 64 MiB (`InterpreterRunner`).
    public var packedWeightBytes: Int = .max
    /// Keep the last inputs and outputs of every shape-arithmetic step (ops on shapes and
    /// constants only, `ShapeMemo`) and skip the step when a run gives it the same inputs
    /// again, as consecutive decode steps of a KV-cache decoder mostly do. Exact. Off by
    /// default: in a SmolLM2 decode step ≈ 1 100 of its 1 750 steps hit, but a lookup cost
    /// more than the Shape/Gather/Unsqueeze kernels it skips (2.0 → 3.0 ms per token,
    /// docs/performance.md).
    public var memoizeShapes: Bool = false

    public init(foldConstants: Bool = true, maxTensorBytes: Int = 8 << 30, lowerInt8: Bool = true,
                bufferCacheBytes: Int = 2 << 30, fuseElementwise: Bool = true, observable: Set<String> = [],
                packedWeightBytes: Int = .max, memoizeShapes: Bool = false) {
        self.memoizeShapes = memoizeShapes
        self.observable = observable
        self.packedWeightBytes = packedWeightBytes
        self.foldConstants = foldConstants
        self.maxTensorBytes = maxTensorBytes
        self.lowerInt8 = lowerInt8
        self.bufferCacheBytes = bufferCacheBytes
        self.fuseElementwise = fuseElementwise
    }
}

/// Receives intermediate values during a run: the value's name and its tensor.
/// Throwing stops the run with that error.
public typealias ValueObserver = (String, Tensor) throws -> Void

/// A model lowered for execution: node order, the kernel of each node (chosen once),
/// constant inputs prepared once (folded, weights packed), and the last use of every
/// value so buffers are released and reused during a run.
///
/// Shapes are resolved at run time, so one plan serves any batch and sequence length.
/// A plan is immutable and can run many times, also concurrently from several threads.
///
/// ```swift
/// let plan = try ExecutionPlan(model: model)
/// let outputs = try plan.run(inputs: ["input_ids": ids])
/// ```
public final class ExecutionPlan: Sendable {
    /// Graph inputs the caller provides (initializer-backed inputs are optional).
    public let inputNames: [String]
    public let outputNames: [String]
    public let options: PlanOptions

    let inputs: [InputSpec]
    let steps: [Step]
    let constants: [(slot: Int, tensor: Tensor)]
    /// Folded node outputs an observer may ask for.
    let observableConstants: [Int]
    let outputSlots: [Int]
    let slotNames: [String]
    let producedByNode: [Bool]
    /// Free buffers left by earlier runs, by byte size.
    private let bufferCache = Mutex(BufferCache())

    public convenience init(model: Model, options: PlanOptions = PlanOptions()) throws {
        try self.init(graph: model.graph, opsets: Dictionary(model.opsetImports.map { ($0.domain, $0.version) },
                                                             uniquingKeysWith: { a, _ in a }),
                      options: options, file: model.sourcePath)
    }

    init(graph: Graph, opsets: [String: Int], options: PlanOptions, file: String?) throws {
        var lowering = Lowering(graph: graph, opsets: opsets, options: options)
        do {
            try lowering.lower()
        } catch let error as IRError {
            throw error.inFile(file)
        }
        self.options = options
        self.inputs = lowering.inputSpecs
        self.inputNames = lowering.inputSpecs.filter { $0.defaultValue == nil }.map(\.name)
        self.outputNames = graph.outputs.map(\.name)
        self.steps = lowering.steps
        self.constants = lowering.constantSlots
        self.observableConstants = lowering.foldedSlots
        self.outputSlots = lowering.outputSlots
        self.slotNames = lowering.slotNames
        self.producedByNode = lowering.producedByNode
    }

    /// Shape-arithmetic steps with a memo (`PlanOptions.memoizeShapes`), and their runs
    /// served from it / computed since the plan was built.
    public var shapeMemoStats: (steps: Int, hits: Int, misses: Int) {
        let memos = steps.compactMap(\.memo)
        return (memos.count, memos.reduce(0) { $0 + $1.hits }, memos.reduce(0) { $0 + $1.misses })
    }

    /// Number of kernels a run executes (after folding and dead-node removal).
    public var stepCount: Int { steps.count }

    /// Names of the values a run computes, in execution order (what an observer can see).
    public var computedValueNames: [String] {
        steps.flatMap { $0.outputSlots.compactMap { $0.map { slotNames[$0] } } }
    }

    /// What each step of a run is, in execution order (the order of `run(inputs:stepNanoseconds:)`'s times).
    public var stepInfos: [StepInfo] { steps.map(\.info) }

    /// Runs the plan. `inputs` maps graph input names to tensors; the result maps every
    /// graph output name to its tensor.
    public func run(inputs given: [String: Tensor]) throws -> [String: Tensor] {
        try run(inputs: given, observe: nil, observer: nil)
    }

    /// Runs the plan and adds the wall time of each step (kernel plus buffer release) to
    /// `stepNanoseconds[i]` (`stepCount` entries; resized if needed), for per-op profiles.
    /// Reading the clock around every step costs tens of nanoseconds per step.
    public func run(inputs given: [String: Tensor], stepNanoseconds: inout [UInt64]) throws -> [String: Tensor] {
        if stepNanoseconds.count != steps.count { stepNanoseconds = [UInt64](repeating: 0, count: steps.count) }
        return try withPool { pool in
            var slots = try initialSlots(given)
            var args: [Tensor?] = []
            let clock = ContinuousClock()
            var last = clock.now
            for (i, step) in steps.enumerated() {
                try execute(step, &slots, &args, pool)
                release(step, &slots, pool)
                let now = clock.now
                let d = last.duration(to: now).components
                stepNanoseconds[i] &+= UInt64(max(0, d.seconds)) &* 1_000_000_000 &+ UInt64(max(0, d.attoseconds / 1_000_000_000))
                last = now
            }
            return try graphOutputs(slots)
        }
    }

    /// Runs the plan and hands intermediate values to `observer`: every graph input and
    /// node output (including values folded at plan time), or only those named in
    /// `observe`. With no observer this costs nothing.
    public func run(
        inputs given: [String: Tensor], observe: Set<String>? = nil, observer: ValueObserver?
    ) throws -> [String: Tensor] {
        try withPool { pool in try run(inputs: given, observe: observe, observer: observer, pool: pool) }
    }

    /// Runs `body` with a buffer pool seeded from the buffers earlier runs left, and keeps the
    /// free buffers (not the returned outputs) for the next run.
    private func withPool(_ body: (BufferPool) throws -> [String: Tensor]) rethrows -> [String: Tensor] {
        let cached = bufferCache.withLock { $0.takeAll() }
        let pool = BufferPool(maxTensorBytes: options.maxTensorBytes, reusing: cached)
        var outputs: [String: Tensor] = [:]
        defer { bufferCache.withLock { $0.keep(pool.takeFreeBuffers(), returned: outputs, limit: options.bufferCacheBytes) } }
        // The kernel threads spin for the whole run, so the products it splits do not
        // each wait for a worker to wake up (SpinPool.keepAwake).
        if let threads = SpinPool.shared {
            outputs = try threads.keepAwake { try body(pool) }
        } else {
            outputs = try body(pool)
        }
        return outputs
    }

    /// The slot array a run starts from: the plan's constants and the bound inputs.
    private func initialSlots(_ given: [String: Tensor]) throws -> [Tensor?] {
        var slots = [Tensor?](repeating: nil, count: slotNames.count)
        for (slot, tensor) in constants { slots[slot] = tensor }
        try bindInputs(given, into: &slots)
        return slots
    }

    /// The graph outputs of a finished run, by name.
    private func graphOutputs(_ slots: [Tensor?]) throws -> [String: Tensor] {
        var result: [String: Tensor] = [:]
        for (name, slot) in zip(outputNames, outputSlots) {
            guard let t = slots[slot] else {
                throw IRError(location: "graph output '\(name)'", reason: "the output was not computed")
            }
            result[name] = t
        }
        return result
    }

    /// The run itself, with the buffer pool passed in (tests read its reuse counters).
    func run(
        inputs given: [String: Tensor], observe: Set<String>?, observer: ValueObserver?, pool: BufferPool
    ) throws -> [String: Tensor] {
        var slots = try initialSlots(given)

        if let observer {
            func wanted(_ slot: Int) -> Bool { observe?.contains(slotNames[slot]) ?? true }
            for spec in inputs where wanted(spec.slot) {
                if let t = slots[spec.slot] { try observer(slotNames[spec.slot], t) }
            }
            for slot in observableConstants where wanted(slot) {
                if let t = slots[slot] { try observer(slotNames[slot], t) }
            }
            var args: [Tensor?] = []
            for step in steps {
                try execute(step, &slots, &args, pool)
                for case let slot? in step.outputSlots where wanted(slot) {
                    if let t = slots[slot] { try observer(slotNames[slot], t) }
                }
                release(step, &slots, pool)
            }
        } else {
            var args: [Tensor?] = []
            for step in steps {
                try execute(step, &slots, &args, pool)
                release(step, &slots, pool)
            }
        }
        return try graphOutputs(slots)
    }

    @inline(__always)
    private func execute(_ step: Step, _ slots: inout [Tensor?], _ args: inout [Tensor?], _ pool: BufferPool) throws {
        // One argument array per run, refilled per step (kernels do not keep it).
        args.removeAll(keepingCapacity: true)
        for s in step.inputSlots { args.append(s.flatMap { slots[$0] }) }
        let results: [Tensor?]
        do {
            if let memo = step.memo {
                if let kept = memo.lookup(args) {
                    results = kept
                } else {
                    results = try step.kernel.run(args, pool)
                    memo.store(args, results)
                }
            } else {
                results = try step.kernel.run(args, pool)
            }
        } catch {
            args.removeAll(keepingCapacity: true)
            throw located(error, at: step.location)
        }
        args.removeAll(keepingCapacity: true)
        guard results.count >= step.outputSlots.count else {
            throw IRError(location: step.location, reason: "the kernel produced \(results.count) outputs, the node has \(step.outputSlots.count)")
        }
        for (i, slot) in step.outputSlots.enumerated() {
            guard let slot else { continue }
            guard let t = results[i] else {
                throw IRError(location: step.location, reason: "the kernel did not produce output \(i)")
            }
            slots[slot] = t
        }
    }

    @inline(__always)
    private func release(_ step: Step, _ slots: inout [Tensor?], _ pool: BufferPool) {
        for slot in step.releaseAfter {
            guard let t = slots[slot] else { continue }
            var storage = t.storage
            slots[slot] = nil
            _ = consume t
            if isKnownUniquelyReferenced(&storage) { pool.recycle(storage) }
        }
    }
}

/// A graph input as the plan checks it.
struct InputSpec: Sendable {
    let name: String
    let slot: Int
    let type: TensorType?
    /// The initializer of the same name (ONNX IR < 4 lists initializers among inputs).
    let defaultValue: Tensor?
}

/// One kernel invocation of a run. A class: a run walks ≈ 3 400 steps per SmolLM2 decode
/// token, and copying a struct of six arrays, strings and an existential retained and
/// released each of them per step (≈ 5% of a decode step in `perf`).
final class Step: @unchecked Sendable {
    let kernel: any OpKernel
    /// `node 'name' (OpType)`, for errors.
    let location: String
    let inputSlots: [Int?]
    let outputSlots: [Int?]
    /// Slots whose last use is this step (node outputs only; never graph outputs). Set
    /// while the plan is lowered, read-only afterwards.
    var releaseAfter: [Int]
    let info: StepInfo
    /// Shape arithmetic: the last run's inputs and outputs (`PlanOptions.memoizeShapes`).
    let memo: ShapeMemo?

    init(kernel: any OpKernel, location: String, inputSlots: [Int?], outputSlots: [Int?],
         releaseAfter: [Int], info: StepInfo, memo: ShapeMemo? = nil) {
        self.memo = memo
        self.kernel = kernel
        self.location = location
        self.inputSlots = inputSlots
        self.outputSlots = outputSlots
        self.releaseAfter = releaseAfter
        self.info = info
    }
}

/// What one step of a plan runs, for profiles: the node (for a fused kernel, the node that
/// anchors the fusion), its op type, and its kind: the op type, with ` (int8)` or
/// ` (int8 batched)` for QDQ patterns lowered to int8 kernels.
public struct StepInfo: Sendable, Hashable {
    public let node: String
    public let opType: String
    public let kind: String
}

/// Buffers kept between runs: free buffers by byte size, and the storage of the outputs
/// the last run returned (when the caller has dropped them by the next run, they are free).
struct BufferCache: ~Copyable {
    private var free: [Int: [TensorStorage]] = [:]
    private var returned: [TensorStorage] = []

    /// Everything reusable now, by byte size.
    mutating func takeAll() -> [Int: [TensorStorage]] {
        var buffers = free
        free = [:]
        while var storage = returned.popLast() {
            if !storage.isBorrowed && isKnownUniquelyReferenced(&storage) {
                buffers[storage.byteCount, default: []].append(storage)
            }
        }
        return buffers
    }

    /// Keeps a run's free buffers (up to `limit` bytes in all) and its outputs' storage.
    mutating func keep(_ buffers: [Int: [TensorStorage]], returned outputs: [String: Tensor], limit: Int) {
        var total = free.reduce(0) { $0 + $1.key * $1.value.count }
        for (size, list) in buffers.sorted(by: { $0.key > $1.key }) {
            for storage in list where total + size <= limit {
                free[size, default: []].append(storage)
                total += size
            }
        }
        var seen = Set<ObjectIdentifier>()
        for tensor in outputs.values where total + tensor.byteCount <= limit && seen.insert(ObjectIdentifier(tensor.storage)).inserted {
            returned.append(tensor.storage)
            total += tensor.byteCount
        }
    }
}
