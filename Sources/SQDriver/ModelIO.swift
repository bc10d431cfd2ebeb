import Foundation
import SQIR
import SQONNX

/// The CLI's one door to ONNX files (SQONNX): models and single TensorProto files.
enum ModelIO {
    static func load(_ path: String) throws -> Model {
        try ONNXDecoder().decode(file: path)
    }

    /// Writes atomically; refuses to write over the model's own input or data files.
    static func save(_ model: Model, to path: String, externalData: Bool) throws {
        try ONNXEncoder(options: .init(externalData: externalData)).write(model, to: path)
    }

    /// A TensorProto file (`input_0.pb`) and the name stored in it, if any.
    static func loadTensor(_ path: String) throws -> (Tensor, String?) {
        try ONNXDecoder().decodeTensor(file: path)
    }
}
