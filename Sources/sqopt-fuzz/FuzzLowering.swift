import SQIR
import SQRuntime

/// Lowering a verified model to an execution plan (SQRuntime) and, for tiny graphs only,
/// one run on zero inputs. Returns nil when everything succeeded, else the clean error.
///
/// Caps keep one input cheap: tensors up to `maxTensorBytes` (the plan refuses larger ones,
/// including shapes computed at run time), and a run only when every graph input has a
/// static shape of at most `maxRunElements` elements and a numeric dtype.
enum FuzzLowering {
    static let maxRunElements = 4_096

    static func lower(_ model: Model, maxTensorBytes: Int) -> String? {
        let plan: ExecutionPlan
        do {
            plan = try ExecutionPlan(model: model, options: PlanOptions(foldConstants: true, maxTensorBytes: maxTensorBytes, lowerInt8: true))
        } catch {
            return "\(error)"
        }
        guard let inputs = zeroInputs(model.graph, names: plan.inputNames) else { return nil }
        do {
            _ = try plan.run(inputs: inputs)
        } catch {
            return "run: \(error)"
        }
        return nil
    }

    /// Zero tensors for `names`, or nil when any input is not small, static and numeric.
    static func zeroInputs(_ graph: Graph, names: [String]) -> [String: Tensor]? {
        var inputs: [String: Tensor] = [:]
        for name in names {
            guard let value = graph.inputs.first(where: { $0.name == name }),
                  let type = value.type, type.dtype != .string,
                  let shape = type.staticShape,
                  let count = checkedElementCount(shape), count <= maxRunElements else { return nil }
            inputs[name] = Tensor.zeros(type.dtype, shape: shape)
        }
        return inputs
    }
}
