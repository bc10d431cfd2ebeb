import SQIR
import SQRuntime

/// Runs calibration samples with sqopt's interpreter: the model is lowered once to an
/// `ExecutionPlan`, and each run hands only the observed values to the calibrator.
enum InterpreterRunner {
    static func make(_ model: Model) throws -> Calibrator.Runner {
        let plan = try ExecutionPlan(model: model)
        return { inputs, observe, observer in
            // The plan calls the observer only during `run`, so it never actually escapes.
            try withoutActuallyEscaping(observer) { observer in
                _ = try plan.run(inputs: inputs, observe: observe, observer: observer)
            }
        }
    }
}
