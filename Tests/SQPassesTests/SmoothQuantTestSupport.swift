import Foundation
import SQIR
@testable import SQPasses

/// Builds small graphs in tests (until IR text parsing is used for every case).
final class SQTestGraph {
    let graph = Graph(name: "test")

    @discardableResult
    func input(_ name: String, _ dims: [Dim], _ dtype: DType = .float) -> Value {
        let v = Value(name: name, type: TensorType(dtype, dims))
        graph.inputs.append(v)
        return v
    }

    func constant(_ name: String, shape: [Int], _ values: [Float]) -> Value {
        graph.addInitializer(Tensor(shape: shape, values: values), name: name)
    }

    /// A deterministic pseudo-random constant (values in [-scale, scale]).
    func randomConstant(_ name: String, shape: [Int], seed: UInt64, scale: Float = 1) -> Value {
        var rng = SplitMix64(seed: seed)
        let n = shape.reduce(1, *)
        return constant(name, shape: shape, (0..<n).map { _ in rng.nextSigned() * scale })
    }

    @discardableResult
    func op(_ type: String, _ name: String, _ inputs: [Value?], _ attributes: [Attribute] = []) -> Value {
        let node = graph.makeNode(type, name: name, inputs: inputs, attributes: attributes)
        return node.output(0)!
    }

    func output(_ v: Value) { graph.outputs.append(v) }

    var model: Model { Model(graph: graph) }

    func node(_ name: String) -> Node? { graph.nodes.first { $0.name == name } }

    /// The node named `name`; throws when absent.
    func the(_ name: String) throws -> Node {
        guard let n = node(name) else { throw IRError(reason: "test graph has no node '\(name)'") }
        return n
    }
}

extension SplitMix64 {
    /// Uniform in [-1, 1).
    mutating func nextSigned() -> Float { Float(Double(next() >> 11) / Double(1 << 53) * 2 - 1) }
}

func sqFloats(_ v: Value?) -> [Float] { v?.constant?.elements(as: Float.self) ?? [] }

/// Statistics of one value from a list of rows (each row one token of `channels` values).
func sqStatistics(rows: [[Float]]) -> ActivationStatistics {
    var s = ActivationStatistics()
    let flat = rows.flatMap { $0 }
    flat.withUnsafeBufferPointer { s.observe($0, shape: [rows.count, rows.first?.count ?? 0]) }
    return s
}
