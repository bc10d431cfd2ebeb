import SQIR
import SQRuntime

/// Runs calibration samples with sqopt's interpreter: the model is lowered once to an
/// `ExecutionPlan` (packing at most `packedWeightBytes` of weights), and each run hands
/// only the observed values to the calibrator.
enum InterpreterRunner {
    /// Float32 weights the calibration plan packs once (`PlanOptions.packedWeightBytes`):
    /// small models keep the fast path, a large model's memory stays near its own size
    /// (packing a float16 model whole would take twice its size again).
    static let packedWeightBytes = 64 << 20

    static func make(_ model: Model) throws -> Calibrator.Runner {
        // Every value calibration may observe stays a step's output: no fusion absorbs it (the
        // attention fusion would otherwise hide the softmax output P·V's statistics need).
        let plan = try ExecutionPlan(model: model, options: PlanOptions(
            observable: Set(Calibrator.observedValues(in: model.graph)), packedWeightBytes: packedWeightBytes))
        return { inputs, observe, observer in
            // The plan calls the observer only during `run`, so it never actually escapes.
            try withoutActuallyEscaping(observer) { observer in
                _ = try plan.run(inputs: inputs, observe: observe, observer: observer)
            }
        }
    }
}
