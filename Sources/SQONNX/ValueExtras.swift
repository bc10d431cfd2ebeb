import Foundation
import SQIR

/// ONNX details of a value that SQIR has no field for (yet), kept so the encoder can write
/// them back:
/// - `typeProto`: the packed TypeProto when `TensorType` cannot express it exactly
///   (sequence/map/optional/sparse types, element types sqopt does not know, denotations,
///   negative dims, unknown fields). Written back while `Value.type` still equals
///   `decodedType` (a pass that changes the type replaces it);
/// - `valueInfoUnknownFields`: ValueInfoProto fields sqopt does not model (metadata_props);
/// - `tensorUnknownFields`: TensorProto fields of an initializer sqopt does not model
///   (doc_string, metadata_props);
/// - `sparseInitializer`: the packed SparseTensorProto an initializer was densified from,
///   written back instead of the dense form while the constant is the decoded one.
struct ValueExtras: Sendable {
    var typeProto: [UInt8]?
    var decodedType: TensorType?
    var valueInfoUnknownFields: [UInt8] = []
    var tensorUnknownFields: [UInt8] = []
    var sparseInitializer: (packed: [UInt8], storage: ObjectIdentifier)?

    var isEmpty: Bool {
        typeProto == nil && valueInfoUnknownFields.isEmpty && tensorUnknownFields.isEmpty && sparseInitializer == nil
    }
}

extension Value {
    /// The ONNX extras the decoder kept for this value (stored in `Value.formatExtras`).
    var onnxExtras: ValueExtras? { formatExtras as? ValueExtras }

    /// Applies `change` to the extras of this value (starting from empty ones).
    func updateONNXExtras(_ change: (inout ValueExtras) -> Void) {
        var current = onnxExtras ?? ValueExtras()
        change(&current)
        formatExtras = current.isEmpty ? nil : current
    }
}
