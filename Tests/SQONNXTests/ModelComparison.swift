import SQIR
@testable import SQONNX

/// Differences between two models (empty when they are the same): structure as printed IR,
/// every tensor's bytes, doc strings, metadata, unknown fields and saved ONNX extras.
func differences(_ a: Model, _ b: Model) -> [String] {
    var out: [String] = []
    func check<T: Equatable>(_ what: String, _ x: T, _ y: T) {
        if x != y { out.append("\(what): \(x) != \(y)") }
    }
    check("ir_version", a.irVersion, b.irVersion)
    check("opsets", a.opsetImports, b.opsetImports)
    check("producer", [a.producerName, a.producerVersion, a.domain, a.docString], [b.producerName, b.producerVersion, b.domain, b.docString])
    check("model_version", a.modelVersion, b.modelVersion)
    check("metadata", a.metadata.map { [$0.key, $0.value] }, b.metadata.map { [$0.key, $0.value] })
    check("functions", a.functions, b.functions)
    check("model unknown fields", a.unknownFields, b.unknownFields)
    let printer = IRPrinter(maxConstantElements: 0)
    let textA = printer.print(a), textB = printer.print(b)
    if textA != textB { out.append("printed IR differs:\n--- a\n\(textA)\n--- b\n\(textB)") }
    compareGraphs(a.graph, b.graph, "graph", &out)
    return out
}

private func compareGraphs(_ a: Graph, _ b: Graph, _ path: String, _ out: inout [String]) {
    func check<T: Equatable>(_ what: String, _ x: T, _ y: T) {
        if x != y { out.append("\(path) \(what): \(x) != \(y)") }
    }
    check("name", a.name, b.name)
    check("doc", a.docString, b.docString)
    check("unknown fields", a.unknownFields, b.unknownFields)
    check("sparse", a.sparseInitializers, b.sparseInitializers)
    check("initializer count", a.initializers.count, b.initializers.count)
    for (x, y) in zip(a.initializers, b.initializers) {
        compareValues(x, y, "\(path) initializer '\(x.name)'", &out)
        if let tx = x.constant, let ty = y.constant, !tx.isIdentical(to: ty) {
            out.append("\(path) initializer '\(x.name)' bytes differ")
        }
    }
    for (x, y) in zip(a.inputs, b.inputs) { compareValues(x, y, "\(path) input '\(x.name)'", &out) }
    for (x, y) in zip(a.outputs, b.outputs) { compareValues(x, y, "\(path) output '\(x.name)'", &out) }
    check("node count", a.nodes.count, b.nodes.count)
    for (index, (x, y)) in zip(a.nodes, b.nodes).enumerated() {
        let here = "\(path) node #\(index) '\(x.name)'"
        if x.docString != y.docString { out.append("\(here) doc differs") }
        if x.unknownFields != y.unknownFields { out.append("\(here) unknown fields differ") }
        for (vx, vy) in zip(x.outputs, y.outputs) {
            if let vx, let vy { compareValues(vx, vy, "\(here) output '\(vx.name)'", &out) }
        }
        if x.attributes.count != y.attributes.count { out.append("\(here) attribute count differs"); continue }
        for (ax, ay) in zip(x.attributes, y.attributes) {
            let where_ = "\(here) attribute '\(ax.name)'"
            if ax.docString != ay.docString || ax.refAttrName != ay.refAttrName { out.append("\(where_) doc/ref differs") }
            compareAttributeValues(ax.value, ay.value, where_, &out)
        }
    }
}

private func compareAttributeValues(_ x: AttributeValue, _ y: AttributeValue, _ path: String, _ out: inout [String]) {
    switch (x, y) {
    case (.tensor(let tx), .tensor(let ty)):
        if !tx.isIdentical(to: ty) { out.append("\(path) tensor differs") }
    case (.tensors(let tx), .tensors(let ty)):
        if tx.count != ty.count || zip(tx, ty).contains(where: { !$0.isIdentical(to: $1) }) { out.append("\(path) tensors differ") }
    case (.graph(let gx), .graph(let gy)):
        compareGraphs(gx, gy, "\(path) graph", &out)
    case (.graphs(let gx), .graphs(let gy)):
        if gx.count != gy.count { out.append("\(path) graph count differs") }
        for (i, (a, b)) in zip(gx, gy).enumerated() { compareGraphs(a, b, "\(path) graph #\(i)", &out) }
    case (.opaque(let kx, let bx), .opaque(let ky, let by)):
        if kx != ky || bx != by { out.append("\(path) opaque attribute differs") }
    case (.float(let fx), .float(let fy)):
        if fx.bitPattern != fy.bitPattern { out.append("\(path) float differs") }
    case (.floats(let fx), .floats(let fy)):
        if fx.map(\.bitPattern) != fy.map(\.bitPattern) { out.append("\(path) floats differ") }
    case (.int(let vx), .int(let vy)): if vx != vy { out.append("\(path) int differs") }
    case (.ints(let vx), .ints(let vy)): if vx != vy { out.append("\(path) ints differ") }
    case (.string(let vx), .string(let vy)): if vx != vy { out.append("\(path) string differs") }
    case (.strings(let vx), .strings(let vy)): if vx != vy { out.append("\(path) strings differ") }
    default:
        out.append("\(path) kind differs: \(x) vs \(y)")
    }
}

private func compareValues(_ x: Value, _ y: Value, _ path: String, _ out: inout [String]) {
    if x.name != y.name { out.append("\(path) name \(x.name) != \(y.name)") }
    if x.type != y.type { out.append("\(path) type \(String(describing: x.type)) != \(String(describing: y.type))") }
    if x.docString != y.docString { out.append("\(path) doc differs") }
    let ex = x.onnxExtras, ey = y.onnxExtras
    if ex?.typeProto != ey?.typeProto { out.append("\(path) saved TypeProto differs") }
    if ex?.decodedType != ey?.decodedType { out.append("\(path) saved decoded type differs") }
    if ex?.valueInfoUnknownFields != ey?.valueInfoUnknownFields { out.append("\(path) value_info unknown fields differ") }
    if ex?.tensorUnknownFields != ey?.tensorUnknownFields { out.append("\(path) tensor unknown fields differ") }
    if ex?.sparseInitializer?.packed != ey?.sparseInitializer?.packed { out.append("\(path) sparse form differs") }
}
