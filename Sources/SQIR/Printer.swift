/// The textual form of the IR (documented in docs/ir.md): one node per line.
///
/// ```
/// graph main(%x: f32[batch,seq,64]) -> (%y: f32[batch,seq,64]) {
///   %w = const f32[64,64] <4096 elements>
///   %b = const f32[2] [0.5, -1.0]
///   %mm: f32[batch,seq,64] = MatMul(%x, %w) @"/layer0/MatMul"
///   %y, %rest = Split(%mm, _) {axis = -1, num_outputs = 2}
///   return %y
/// }
/// ```
/// Names outside `[A-Za-z0-9_.\-/]` are quoted. `_` marks an omitted optional operand.
/// Constants with more than `maxConstantElements` elements print as `<N elements>`.
public struct IRPrinter {
    public var maxConstantElements: Int
    public var indentUnit = "  "

    public init(maxConstantElements: Int = 16) {
        self.maxConstantElements = maxConstantElements
    }

    public func print(_ model: Model) -> String {
        var header = "// ir_version \(model.irVersion), opsets "
        header += model.opsetImports.map { "\(ONNXDomain.displayName($0.domain))=\($0.version)" }.joined(separator: ", ")
        return header + "\n" + print(model.graph)
    }

    public func print(_ graph: Graph, indent: String = "") -> String {
        var out = indent + "graph \(Self.quoted(graph.name))("
        out += graph.inputs.map { typed($0) }.joined(separator: ", ")
        out += ") -> ("
        out += graph.outputs.map { typed($0) }.joined(separator: ", ")
        out += ") {\n"
        let inner = indent + indentUnit
        for v in graph.initializers {
            out += inner + "%\(Self.quoted(v.name)) = const " + (v.constant.map { tensorLiteral($0) } ?? "<missing>") + "\n"
        }
        for node in graph.nodes {
            out += inner + line(for: node, indent: inner) + "\n"
        }
        out += inner + "return " + graph.outputs.map { "%\(Self.quoted($0.name))" }.joined(separator: ", ") + "\n"
        out += indent + "}\n"
        return out
    }

    /// One node: `%a: type, %b = Op(%x, _, %y) {attrs} @name`.
    public func line(for node: Node, indent: String = "") -> String {
        var s = ""
        if !node.outputs.isEmpty {
            s += node.outputs.map { $0.map { typed($0) } ?? "_" }.joined(separator: ", ") + " = "
        }
        s += node.qualifiedOpType.split(separator: "::", omittingEmptySubsequences: false)
            .map { Self.quoted(String($0)) }.joined(separator: "::")
        s += "(" + node.inputs.map { $0.map { "%\(Self.quoted($0.name))" } ?? "_" }.joined(separator: ", ") + ")"
        if !node.attributes.isEmpty {
            s += " {" + node.attributes.map { "\(Self.quoted($0.name)) = \(attributeLiteral($0.value, indent: indent))" }
                .joined(separator: ", ") + "}"
        }
        if !node.name.isEmpty { s += " @" + Self.quoted(node.name) }
        return s
    }

    private func typed(_ v: Value) -> String {
        "%\(Self.quoted(v.name))" + (v.type.map { ": \($0)" } ?? "")
    }

    /// `f32[2] [1.0, 2.0]`, or `f32[64,64] <4096 elements>` when large.
    public func tensorLiteral(_ t: Tensor) -> String {
        let head = "\(t.dtype.shortName)[\(t.shape.map(String.init).joined(separator: ","))]"
        if t.count > maxConstantElements { return head + " <\(t.count) elements>" }
        return head + " [" + Self.elementStrings(t).joined(separator: ", ") + "]"
    }

    /// Elements printed so that parsing gives the same bits back.
    static func elementStrings(_ t: Tensor) -> [String] {
        switch t.dtype {
        case .float: return t.elements(as: Float.self).map { $0.description }
        case .double: return t.elements(as: Double.self).map { $0.description }
        case .float16, .bfloat16: return t.elements(as: UInt16.self).map { "0x" + String($0, radix: 16) }
        case .bool: return t.elements(as: UInt8.self).map { $0 != 0 ? "true" : "false" }
        case .string: return t.strings.map { stringLiteral(String(decoding: $0, as: UTF8.self)) }
        case .uint64: return t.elements(as: UInt64.self).map { String($0) }
        default: return (t.int64Values() ?? []).map { String($0) }
        }
    }

    func attributeLiteral(_ value: AttributeValue, indent: String) -> String {
        switch value {
        case .float(let f): return f.description
        case .int(let i): return String(i)
        case .string(let s): return Self.stringLiteral(s)
        case .tensor(let t): return "dense<" + tensorLiteral(t) + ">"
        case .graph(let g): return "\n" + print(g, indent: indent + indentUnit) + indent
        case .floats(let fs): return fs.isEmpty ? "[] : floats" : "[" + fs.map(\.description).joined(separator: ", ") + "]"
        case .ints(let xs): return xs.isEmpty ? "[] : ints" : "[" + xs.map(String.init).joined(separator: ", ") + "]"
        case .strings(let ss): return ss.isEmpty ? "[] : strings" : "[" + ss.map(Self.stringLiteral).joined(separator: ", ") + "]"
        case .tensors(let ts): return "[" + ts.map { "dense<" + tensorLiteral($0) + ">" }.joined(separator: ", ") + "]" + (ts.isEmpty ? " : tensors" : "")
        case .graphs(let gs): return "[" + gs.map { "\n" + print($0, indent: indent + indentUnit) + indent }.joined(separator: ", ") + "]" + (gs.isEmpty ? " : graphs" : "")
        case .opaque(let type, let bytes): return "opaque<\(type): " + bytes.map { String(format2: $0) }.joined() + ">"
        }
    }

    /// A name as printed: bare when it only has `[A-Za-z0-9_.\-/]`, else a quoted literal.
    public static func quoted(_ name: String) -> String {
        let bare = !name.isEmpty && name.utf8.allSatisfy { c in
            (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 95 || c == 46 || c == 45 || c == 47
        }
        return bare ? name : stringLiteral(name)
    }

    /// A double-quoted string with `\"`, `\\`, `\n`, `\t` and `\u{XX}` escapes.
    public static func stringLiteral(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    out += "\\u{" + String(scalar.value, radix: 16) + "}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}

extension String {
    /// Two lowercase hex digits.
    init(format2 byte: UInt8) {
        let digits = Array("0123456789abcdef")
        self = String([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
    }
}
