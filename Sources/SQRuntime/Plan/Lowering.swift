import SQIR
import SQKernels

/// Builds the parts of an `ExecutionPlan` from a graph:
/// 1. a slot (register) per value; graph inputs, initializers and node outputs;
/// 2. dead nodes (nothing reaches a graph output) dropped;
/// 3. per live node, in topological order: the kernel from the op table; nodes whose
///    inputs are all constant are evaluated now and become constants (folding);
/// 4. the last use of every computed value, so a run releases buffers early.
struct Lowering {
    let graph: Graph
    let opsets: [String: Int]
    let options: PlanOptions

    private(set) var inputSpecs: [InputSpec] = []
    private(set) var steps: [Step] = []
    private(set) var constantSlots: [(slot: Int, tensor: Tensor)] = []
    private(set) var foldedSlots: [Int] = []
    private(set) var outputSlots: [Int] = []
    private(set) var slotNames: [String] = []
    private(set) var producedByNode: [Bool] = []

    private var slotOf: [ObjectIdentifier: Int] = [:]
    private var constantValue: [ObjectIdentifier: Tensor] = [:]
    /// Slots of shape values: outputs of memoized shape-arithmetic steps (`ShapeMemo`).
    private var shapeSlots = Set<Int>()
    /// `options.packedWeightBytes` not yet used by packed weights (nil: no limit).
    private let packBudget: PackBudget?

    init(graph: Graph, opsets: [String: Int], options: PlanOptions) {
        self.graph = graph
        self.opsets = opsets
        self.options = options
        self.packBudget = options.packedWeightBytes == .max ? nil : PackBudget(max(0, options.packedWeightBytes))
    }

    private mutating func slot(for value: Value, byNode: Bool) -> Int {
        if let s = slotOf[ObjectIdentifier(value)] { return s }
        let s = slotNames.count
        slotOf[ObjectIdentifier(value)] = s
        slotNames.append(value.name)
        producedByNode.append(byNode)
        return s
    }

    mutating func lower() throws {
        let nodes = try graph.topologicallySorted()
        for value in graph.initializers {
            guard let tensor = value.constant else {
                throw IRError(location: "initializer '\(value.name)'", reason: "initializer has no data")
            }
            let s = slot(for: value, byNode: false)
            constantValue[ObjectIdentifier(value)] = tensor
            constantSlots.append((s, tensor))
        }
        for value in graph.inputs {
            let s = slot(for: value, byNode: false)
            let initializer = constantValue[ObjectIdentifier(value)]
            inputSpecs.append(InputSpec(name: value.name, slot: s, type: value.type, defaultValue: initializer))
        }
        constantSlots.removeAll { c in inputSpecs.contains { $0.slot == c.slot } }
        for node in nodes {
            for case let v? in node.outputs { _ = slot(for: v, byNode: true) }
        }

        let live = liveNodes(nodes)
        let int8 = options.lowerInt8 ? Int8Lowering(graph: graph, live: live, observable: options.observable) : nil
        let elementwise = options.fuseElementwise
            ? ElementwiseFusion(graph: graph, live: live, taken: int8?.ownedNodes ?? [], observable: options.observable,
                                opset: opsets[""] ?? 1) : nil
        // A GELU/SiLU chain whose input only it reads, computed by an int8 product: one step,
        // the activation applied to the product's blocks of rows (`MatMul+Add+Gelu (int8)`).
        var joined: [ObjectIdentifier: FusedStep] = [:], joinedProducts = Set<ObjectIdentifier>()
        if let int8, let elementwise {
            let outputs = Set(graph.outputs.map(ObjectIdentifier.init))
            for chain in elementwise.activations {
                guard let product = chain.input.producer, product.outputs.count == 1,
                      let fusion = int8.fusion(for: product), let kernel = fusion.kernel as? Int8LinearKernel,
                      !outputs.contains(ObjectIdentifier(chain.input)), !options.observable.contains(chain.input.name),
                      chain.input.uses.allSatisfy({ chain.members.contains(ObjectIdentifier($0.node)) }) else { continue }
                let name = chain.op == SQ_VM_GELU ? "Gelu" : "SiLU"
                joined[chain.root] = FusedStep(kernel: kernel.applying(chain.op), inputs: fusion.inputs,
                                               kind: fusion.kind.replacing(" (int8)", with: "+\(name) (int8)"))
                joinedProducts.insert(ObjectIdentifier(product))
            }
        }
        for node in nodes where live.contains(ObjectIdentifier(node)) {
            if joinedProducts.contains(ObjectIdentifier(node)) { continue }
            if let f = joined[ObjectIdentifier(node)] {
                try lower(node, fused: f)
                continue
            }
            if int8?.absorbed.contains(ObjectIdentifier(node)) == true { continue }
            if elementwise?.absorbed.contains(ObjectIdentifier(node)) == true { continue }
            if let f = elementwise?.fusion(for: node) {
                try lower(node, fused: f)
                continue
            }
            try lower(node, fused: int8?.fusion(for: node))
        }

        for value in graph.outputs {
            guard let s = slotOf[ObjectIdentifier(value)] else {
                throw IRError(location: "graph output '\(value.name)'", reason: "the output is not defined in the graph")
            }
            if value.producer == nil && !graph.inputs.contains(where: { $0 === value }) && value.constant == nil {
                throw IRError(location: "graph output '\(value.name)'", reason: "the output is not produced by any node")
            }
            outputSlots.append(s)
        }
        dropUnreadConstants()
        computeReleases()
    }

    /// Constants no step reads (weights the kernels packed, folded intermediates) are not
    /// kept by the plan, unless they are graph outputs.
    private mutating func dropUnreadConstants() {
        var read = Set(outputSlots)
        for step in steps { for case let s? in step.inputSlots { read.insert(s) } }
        constantSlots.removeAll { !read.contains($0.slot) }
        foldedSlots.removeAll { !read.contains($0) }
    }

    /// Nodes from which a graph output is reachable.
    private func liveNodes(_ nodes: [Node]) -> Set<ObjectIdentifier> {
        var needed = Set(graph.outputs.map(ObjectIdentifier.init))
        var live = Set<ObjectIdentifier>()
        for node in nodes.reversed() {
            guard node.outputs.contains(where: { $0.map { needed.contains(ObjectIdentifier($0)) } ?? false }) else { continue }
            live.insert(ObjectIdentifier(node))
            for case let v? in node.inputs { needed.insert(ObjectIdentifier(v)) }
        }
        return live
    }

    private mutating func lower(_ node: Node, fused fusion: FusedStep?) throws {
        let location = IRError.describe(node)
        let fused = fusion?.kernel
        var inputSlots: [Int?] = []
        for value in fusion?.inputs ?? node.inputs {
            guard let value else { inputSlots.append(nil); continue }
            guard let s = slotOf[ObjectIdentifier(value)] else {
                throw IRError(node: node, reason: "input '\(value.name)' is not defined in the graph")
            }
            inputSlots.append(s)
        }
        let outputSlots = node.outputs.map { $0.flatMap { slotOf[ObjectIdentifier($0)] } }

        let kernel: any OpKernel
        if let fused {
            kernel = fused
        } else {
            let constants = constantValue
            kernel = try NodeEvaluation.kernel(for: node, opset: opsets[node.domain] ?? 1,
                                               constantOf: { constants[ObjectIdentifier($0)] }, packBudget: packBudget)
        }

        let allConstant = node.inputs.allSatisfy { $0.map { constantValue[ObjectIdentifier($0)] != nil } ?? true }
        if options.foldConstants && allConstant && fused == nil {
            // Folding: the node is evaluated now, as `fold-constants` evaluates it (NodeEvaluation).
            let args = node.inputs.map { $0.flatMap { constantValue[ObjectIdentifier($0)] } }
            let results = try NodeEvaluation.run(kernel, of: node, inputs: args, maxTensorBytes: options.maxTensorBytes)
            for (i, value) in node.outputs.enumerated() {
                guard let value, let s = outputSlots[i], let t = results[i] else { continue }
                constantValue[ObjectIdentifier(value)] = t
                constantSlots.append((s, t))
                foldedSlots.append(s)
            }
            return
        }
        for i in kernel.preparedInputs where i < inputSlots.count { inputSlots[i] = nil }
        let kind = fusion?.kind ?? node.opType
        var memo: ShapeMemo?
        if options.memoizeShapes && fused == nil && node.domain.isEmpty && ShapeMemo.memoizableOps.contains(node.opType)
            && kernel.preparedInputs.isEmpty {
            let constant = node.inputs.map { $0.map { constantValue[ObjectIdentifier($0)] != nil } ?? false }
            let onShapes = node.opType == "Shape" || node.opType == "Size" || zip(node.inputs, constant).allSatisfy { value, isConstant in
                guard let value else { return true }
                return isConstant || slotOf[ObjectIdentifier(value)].map { shapeSlots.contains($0) } == true
            }
            if onShapes {
                memo = ShapeMemo(opType: node.opType, constantInputs: constant)
                for case let s? in outputSlots { shapeSlots.insert(s) }
            }
        }
        steps.append(Step(kernel: kernel, location: location, inputSlots: inputSlots,
                          outputSlots: outputSlots, releaseAfter: [],
                          info: StepInfo(node: node.name, opType: node.opType, kind: kind), memo: memo))
    }

    /// After the last step that reads a node-computed value, release it (unless it is a
    /// graph output or a constant).
    private mutating func computeReleases() {
        var lastUse = [Int](repeating: -1, count: slotNames.count)
        for (i, step) in steps.enumerated() {
            for case let s? in step.inputSlots { lastUse[s] = i }
            // A computed value nobody reads is released right after it is made.
            for case let s? in step.outputSlots where lastUse[s] < i { lastUse[s] = i }
        }
        let keep = Set(outputSlots).union(constantSlots.map(\.slot))
        for s in 0..<slotNames.count where producedByNode[s] && !keep.contains(s) && lastUse[s] >= 0 {
            steps[lastUse[s]].releaseAfter.append(s)
        }
    }
}
