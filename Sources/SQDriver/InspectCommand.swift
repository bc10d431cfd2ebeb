import Foundation
import SQIR
import SQPasses
import SQRuntime

/// `sqopt inspect MODEL`: opsets, inputs/outputs, op histogram, parameters by dtype.
/// Reads only metadata: external weights stay memory-mapped and untouched.
struct InspectCommand {
    let driver: Driver

    static let options: [OptionSpec] = [
        .flag("--json", help: "print the summary as JSON"),
        .flag("--print-ir", help: "also print the IR (large constants elided)"),
    ]

    var help: String {
        """
        USAGE: \(driver.usageLine(for: "inspect"))

        Shows a model's IR version and opsets, its inputs and outputs with shapes, a histogram
        of op types, and parameter counts and bytes per dtype.

        OPTIONS:
        \(formatOptions(Self.options))
        """
    }

    func run(_ args: [String]) throws {
        let parsed = try parseArguments(args, specs: Self.options, command: "inspect")
        let path = try parsed.single("MODEL", command: "inspect")
        let model = try ModelIO.load(path)
        let summary = ModelSummary(model)
        if parsed.has("--json") {
            Console.out(try summary.json())
        } else {
            Console.out(summary.text(path: path), terminator: "")
        }
        if parsed.has("--print-ir") { Console.out(IRPrinter().print(model), terminator: "") }
    }
}

/// What `inspect` reports, computed from the IR.
struct ModelSummary: Encodable {
    struct IO: Encodable { let name: String; let type: String }
    struct DTypeParameters: Encodable { let dtype: String; let tensors: Int; let elements: Int; let bytes: Int }
    /// What the MatMul/Gemm nodes are for `quantize` (`LinearCoverage`).
    struct Linears: Encodable {
        /// Float32 linears `quantize` can take.
        let float32: Int
        /// Linears with other float weights (not supported yet), by dtype.
        let unsupportedFloat: [String: [String]]
        /// Linears whose weights are int8 already: weight-only (float activation) or full QDQ.
        let weightOnlyInt8: [LinearCoverage.QuantizedLayer]
        let qdqInt8: [LinearCoverage.QuantizedLayer]
        let attentionMatMuls: Int
    }

    let irVersion: Int
    let opsets: [String: Int]
    let producer: String
    let inputs: [IO]
    let outputs: [IO]
    let nodeCount: Int
    let ops: [String: Int]
    /// Op types the interpreter has no kernel for (custom ops): kept as they are by every
    /// pass; `quantize` works around them, but calibrate / run / verify cannot execute them.
    let unsupportedOps: [String]
    let parameters: [DTypeParameters]
    let externalDataBytes: Int
    let linears: Linears

    init(_ model: Model) {
        let g = model.graph
        irVersion = model.irVersion
        opsets = Dictionary(model.opsetImports.map { (ONNXDomain.displayName($0.domain), $0.version) }, uniquingKeysWith: { a, _ in a })
        producer = [model.producerName, model.producerVersion].filter { !$0.isEmpty }.joined(separator: " ")
        let initializerIDs = Set(g.initializers.map(ObjectIdentifier.init))
        inputs = g.inputs.filter { !initializerIDs.contains(ObjectIdentifier($0)) }
            .map { IO(name: $0.name, type: $0.type?.description ?? "?") }
        outputs = g.outputs.map { IO(name: $0.name, type: $0.type?.description ?? "?") }
        var ops: [String: Int] = [:]
        var count = 0
        func walk(_ graph: Graph) {
            for n in graph.nodes {
                ops[n.qualifiedOpType, default: 0] += 1
                count += 1
                n.subgraphs.forEach(walk)
            }
        }
        walk(g)
        self.ops = ops
        let supported = Set(ExecutionPlan.supportedOperators)
        unsupportedOps = ops.keys.filter { !supported.contains($0) }.sorted()
        nodeCount = count
        var byType: [DType: (Int, Int, Int)] = [:]
        var external = 0
        for v in g.initializers {
            guard let t = v.constant else { continue }
            let old = byType[t.dtype] ?? (0, 0, 0)
            byType[t.dtype] = (old.0 + 1, old.1 + t.count, old.2 + t.byteCount)
            if t.storage.isBorrowed { external += t.byteCount }
        }
        parameters = byType.sorted { $0.value.2 > $1.value.2 }
            .map { DTypeParameters(dtype: $0.key.shortName, tensors: $0.value.0, elements: $0.value.1, bytes: $0.value.2) }
        externalDataBytes = external
        let coverage = LinearCoverage(g)
        linears = Linears(float32: coverage.floatLinears.count,
                          unsupportedFloat: Dictionary(coverage.unsupportedFloat.map { ($0.key.longName, $0.value) }, uniquingKeysWith: +),
                          weightOnlyInt8: coverage.weightOnlyInt8,
                          qdqInt8: coverage.quantized.filter(\.activationQuantized),
                          attentionMatMuls: coverage.activationMatMuls.count)
    }

    func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    func text(path: String) -> String {
        var s = "model: \(path)\n"
        s += "ir_version: \(irVersion)   opsets: " + opsets.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + "\n"
        if !producer.isEmpty { s += "producer: \(producer)\n" }
        s += "inputs:\n" + inputs.map { "  \($0.name): \($0.type)\n" }.joined()
        s += "outputs:\n" + outputs.map { "  \($0.name): \($0.type)\n" }.joined()
        s += "nodes: \(nodeCount)\n"
        for (op, n) in ops.sorted(by: { $0.value > $1.value || ($0.value == $1.value && $0.key < $1.key) }) {
            s += "  " + op.padding(toLength: 32, withPad: " ", startingAt: 0) + String(n) + "\n"
        }
        if !unsupportedOps.isEmpty {
            s += "ops the interpreter cannot run (kept as is): " + unsupportedOps.joined(separator: ", ") + "\n"
        }
        let totalElements = parameters.reduce(0) { $0 + $1.elements }
        let totalBytes = parameters.reduce(0) { $0 + $1.bytes }
        s += "parameters: \(totalElements) in \(parameters.reduce(0) { $0 + $1.tensors }) tensors, \(formatBytes(totalBytes))"
        s += externalDataBytes > 0 ? " (\(formatBytes(externalDataBytes)) memory-mapped external data)\n" : "\n"
        for p in parameters {
            s += "  " + p.dtype.padding(toLength: 6, withPad: " ", startingAt: 0)
                + "\(p.tensors) tensors, \(p.elements) elements, \(formatBytes(p.bytes))\n"
        }
        s += linearsText
        return s
    }

    /// `linear layers: 12 float32 (quantize takes these), 4 attention MatMuls`, then one
    /// block per kind that `quantize` cannot take, with the node names.
    var linearsText: String {
        var s = "linear layers: \(linears.float32) float32 (quantize takes these), \(linears.attentionMatMuls) attention MatMul(s)\n"
        func block(_ title: String, _ names: [String]) {
            guard !names.isEmpty else { return }
            s += "  \(title): \(names.count)\n"
            let limit = 20
            for name in names.prefix(limit) { s += "    \(name)\n" }
            if names.count > limit { s += "    ... and \(names.count - limit) more\n" }
        }
        func forms(_ layers: [LinearCoverage.QuantizedLayer]) -> String {
            Set(layers.map(\.form.rawValue)).sorted().joined(separator: ", ")
        }
        block("weight-only int8 (\(forms(linears.weightOnlyInt8)); quantize refuses these)", linears.weightOnlyInt8.map(\.node))
        block("W8A8 QDQ int8 (already quantized)", linears.qdqInt8.map(\.node))
        for (dtype, names) in linears.unsupportedFloat.sorted(by: { $0.key < $1.key }) {
            block("\(dtype) weights (not supported yet by quantize)", names)
        }
        return s
    }
}

func formatBytes(_ n: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB"]
    var v = Double(n)
    var u = 0
    while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
    return u == 0 ? "\(n) B" : String(format: "%.1f ", v) + units[u]
}
