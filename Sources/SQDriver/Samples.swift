import Foundation
import SQIR
import SQPasses

/// Samples for `run`, `verify` and `calibrate`, all read by the calibration reader
/// (`CalibrationDirectory`): `test_data_set_N/input_K.pb` folders (TensorProto, graph-input
/// order; decoded here with SQONNX) or one folder per sample of `INPUT_NAME.npy` files. A
/// folder that holds such files itself is one sample.
enum SampleLoader {
    /// The graph inputs a caller must feed (initializers listed as inputs are optional).
    static func runtimeInputs(_ model: Model) -> [Value] {
        let initializerIDs = Set(model.graph.initializers.map(ObjectIdentifier.init))
        return model.graph.inputs.filter { !initializerIDs.contains(ObjectIdentifier($0)) }
    }

    static func open(_ dir: String, model: Model) throws -> CalibrationDirectory {
        try CalibrationDirectory(path: dir, graphInputs: runtimeInputs(model))
    }
}

/// A plain failure with a message (exit code 1).
struct DriverError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}
