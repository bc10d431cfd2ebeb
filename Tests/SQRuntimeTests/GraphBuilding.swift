import SQIR
@testable import SQRuntime

/// Builds small graphs in Swift for the plan tests.
final class TestGraph {
    let graph = Graph(name: "test")
    private var counter = 0

    @discardableResult
    func input(_ name: String, _ dtype: DType = .float, _ dims: [Dim]?) -> Value {
        let v = Value(name: name, type: TensorType(dtype, dims))
        graph.inputs.append(v)
        return v
    }

    func constant(_ name: String, _ tensor: Tensor) -> Value {
        let v = Value(name: name, constant: tensor)
        graph.initializers.append(v)
        return v
    }

    /// Appends a node; outputs are named `<name>_out<i>` (or `name` for a single output).
    @discardableResult
    func node(_ op: String, _ inputs: [Value?], name: String? = nil, domain: String = "",
              attributes: [Attribute] = [], outputs: Int = 1) -> [Value] {
        counter += 1
        let nodeName = name ?? "\(op.lowercased())\(counter)"
        let outs = (0..<outputs).map { Value(name: outputs == 1 ? nodeName : "\(nodeName)_out\($0)") }
        graph.append(Node(op, domain: domain, name: nodeName, inputs: inputs, outputs: outs, attributes: attributes))
        return outs
    }

    func op(_ op: String, _ inputs: [Value?], name: String? = nil, attributes: [Attribute] = []) -> Value {
        node(op, inputs, name: name, attributes: attributes)[0]
    }

    func output(_ values: Value...) {
        graph.outputs += values
    }

    func plan(opset: Int = 17, options: PlanOptions = PlanOptions()) throws -> ExecutionPlan {
        try ExecutionPlan(model: Model(graph: graph, opsetImports: [OpsetImport(domain: "", version: opset)]), options: options)
    }
}

func floats(_ shape: [Int], _ values: [Float]) -> Tensor { Tensor(shape: shape, values: values) }
func int64s(_ shape: [Int], _ values: [Int64]) -> Tensor { Tensor(shape: shape, values: values) }

/// Runs a plan and returns the pool's counters too.
func runCounting(_ plan: ExecutionPlan, _ inputs: [String: Tensor]) throws -> (outputs: [String: Tensor], allocations: Int, reuses: Int) {
    let pool = BufferPool(maxTensorBytes: plan.options.maxTensorBytes)
    let outputs = try plan.run(inputs: inputs, observe: nil, observer: nil, pool: pool)
    return (outputs, pool.allocationCount, pool.reuseCount)
}

/// Catches the IRError a throwing call produces (nil if it did not throw one).
func irError(_ body: () throws -> Void) -> IRError? {
    do {
        try body()
        return nil
    } catch let error as IRError {
        return error
    } catch {
        return IRError(reason: "unexpected error type: \(error)")
    }
}
