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
struct ValueExtras {
    var typeProto: [UInt8]?
    var decodedType: TensorType?
    var valueInfoUnknownFields: [UInt8] = []
    var tensorUnknownFields: [UInt8] = []
    var sparseInitializer: (packed: [UInt8], storage: ObjectIdentifier)?

    var isEmpty: Bool {
        typeProto == nil && valueInfoUnknownFields.isEmpty && tensorUnknownFields.isEmpty && sparseInitializer == nil
    }
}

/// Process-wide side table `Value -> ValueExtras`, keyed by object identity and checked with a
/// weak reference (an entry never applies to a different object at a reused address).
///
/// Interim: it stands in for fields SQIR does not have yet (see docs/onnx-io.md). Dead
/// entries are purged as the table grows.
final class ValueExtrasTable: @unchecked Sendable {
    static let shared = ValueExtrasTable()

    private struct Entry {
        weak var owner: Value?
        var extras: ValueExtras
    }

    private let lock = NSLock()
    private var entries: [ObjectIdentifier: Entry] = [:]
    private var purgeAt = 4096

    func extras(of value: Value) -> ValueExtras? {
        lock.lock()
        defer { lock.unlock() }
        guard let entry = entries[ObjectIdentifier(value)], entry.owner === value else { return nil }
        return entry.extras
    }

    func set(_ extras: ValueExtras, for value: Value) {
        lock.lock()
        defer { lock.unlock() }
        if extras.isEmpty {
            entries[ObjectIdentifier(value)] = nil
            return
        }
        entries[ObjectIdentifier(value)] = Entry(owner: value, extras: extras)
        if entries.count >= purgeAt {
            entries = entries.filter { $0.value.owner != nil }
            purgeAt = max(4096, entries.count * 2)
        }
    }

    /// Applies `change` to the extras of `value` (starting from empty ones).
    func update(_ value: Value, _ change: (inout ValueExtras) -> Void) {
        var current = extras(of: value) ?? ValueExtras()
        change(&current)
        set(current, for: value)
    }
}
