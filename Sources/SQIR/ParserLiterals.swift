/// Literals of the IR text: value types, tensor constants and attribute values.
extension GraphParser {
    /// `f32[batch,seq,64]`, `f32[]`, `f32[*]`, `?` for an unknown dim.
    func parseType() throws -> TensorType {
        cursor.skipTrivia()
        let dtype = try parseDType()
        try cursor.expect("[", "after the element type")
        if cursor.consume("*") {
            try cursor.expect("]")
            return TensorType(dtype, nil)
        }
        var dims: [Dim] = []
        if cursor.consume("]") { return TensorType(dtype, dims) }
        while true {
            let start = cursor.index
            while let c = cursor.peek, c != 44, c != 93, c != 10 { cursor.index += 1 }
            let text = String(decoding: cursor.bytes[start..<cursor.index], as: UTF8.self)
            if text == "?" {
                dims.append(.unknown)
            } else if let v = Int(text), v >= 0 {
                dims.append(.known(v))
            } else {
                dims.append(.symbolic(text))
            }
            if cursor.peek == 44 { cursor.index += 1; continue }
            try cursor.expect("]", "closing the dims")
            return TensorType(dtype, dims)
        }
    }

    func parseDType() throws -> DType {
        cursor.skipTrivia()
        let at = cursor.offset
        let start = cursor.index
        while let c = cursor.peek, (c >= 97 && c <= 122) || (c >= 48 && c <= 57) { cursor.index += 1 }
        let word = String(decoding: cursor.bytes[start..<cursor.index], as: UTF8.self)
        guard let dtype = DType(shortName: word) else {
            throw cursor.error("unknown element type '\(word)'", at: at)
        }
        return dtype
    }

    /// `f32[2] [1.0, 2.0]` or `f32[64,64] <4096 elements>`.
    func parseTensorLiteral() throws -> Tensor {
        let dtype = try parseDType()
        try cursor.expect("[", "after the element type")
        var shape: [Int] = []
        if !cursor.consume("]") {
            repeat {
                let dim = try cursor.integer("a dimension")
                guard dim >= 0 else { throw cursor.error("negative dimension \(dim)") }
                shape.append(dim)
            } while cursor.consume(",")
            try cursor.expect("]", "closing the shape")
        }
        guard let count = checkedElementCount(shape) else { throw cursor.error("shape \(shape) is too large") }
        cursor.skipTrivia()
        let dataStart = cursor.offset
        if cursor.consume("<") {
            let n = try cursor.integer("an element count")
            try cursor.expect("elements")
            try cursor.expect(">")
            guard n == count else { throw cursor.error("shape \(shape) has \(count) elements, not \(n)", at: dataStart) }
            guard allowElidedConstants else {
                throw cursor.error("constant data is elided (<\(n) elements>); elided constants parse only when allowed (they are zero-filled)", at: dataStart)
            }
            if dtype == .string { return try Tensor(strings: Array(repeating: [], count: count), shape: shape) }
            return Tensor.zeros(dtype, shape: shape)
        }
        try cursor.expect("[", "opening the elements")
        var tokens: [(text: String, offset: SourceOffset)] = []
        var strings: [[UInt8]] = []
        if !cursor.consume("]") {
            repeat {
                cursor.skipTrivia()
                let at = cursor.offset
                if dtype == .string {
                    strings.append(Array(try cursor.quotedString().utf8))
                } else {
                    tokens.append((cursor.numberToken(), at))
                }
            } while cursor.consume(",")
            try cursor.expect("]", "closing the elements")
        }
        let got = dtype == .string ? strings.count : tokens.count
        guard got == count else {
            throw cursor.error("\(dtype)\(shape) needs \(count) elements, found \(got)", at: dataStart)
        }
        if dtype == .string { return try Tensor(strings: strings, shape: shape) }
        return try makeTensor(dtype, shape, tokens)
    }

    private func makeTensor(_ dtype: DType, _ shape: [Int], _ tokens: [(text: String, offset: SourceOffset)]) throws -> Tensor {
        func convert<T>(_ parse: (String) -> T?) throws -> [T] {
            try tokens.map { token in
                guard let v = parse(token.text) else {
                    throw cursor.error("'\(token.text)' is not a \(dtype) element", at: token.offset)
                }
                return v
            }
        }
        func integer<T: FixedWidthInteger>(_ type: T.Type) throws -> [T] {
            try convert { Int64($0).flatMap { T(exactly: $0) } }
        }
        func pack<T>(_ values: [T]) throws -> Tensor {
            try values.withUnsafeBytes { try Tensor(dtype: dtype, shape: shape, storage: TensorStorage(copying: $0)) }
        }
        switch dtype {
        case .float: return try pack(convert { Float($0) })
        case .double: return try pack(convert { Double($0) })
        case .float16, .bfloat16:
            return try pack(convert { $0.hasPrefix("0x") ? UInt16($0.dropFirst(2), radix: 16) : nil })
        case .bool:
            return try pack(convert { (t: String) -> UInt8? in t == "true" ? 1 : t == "false" ? 0 : nil })
        case .uint64: return try pack(convert { UInt64($0) })
        case .int64: return try pack(integer(Int64.self))
        case .int32: return try pack(integer(Int32.self))
        case .uint32: return try pack(integer(UInt32.self))
        case .int16: return try pack(integer(Int16.self))
        case .uint16: return try pack(integer(UInt16.self))
        case .int8: return try pack(integer(Int8.self))
        case .uint8: return try pack(integer(UInt8.self))
        case .string: return try Tensor(strings: [], shape: shape)
        }
    }

    /// One attribute value, as `IRPrinter.attributeLiteral` writes it.
    func parseAttributeValue() throws -> AttributeValue {
        cursor.skipTrivia()
        let at = cursor.offset
        if cursor.peek == 34 { return .string(try cursor.quotedString()) }
        if cursor.consume("[") { return try parseAttributeList() }
        if cursor.startsWithWord("dense") { return .tensor(try parseDense()) }
        if cursor.startsWithWord("graph") { return .graph(try parseSubgraph()) }
        if cursor.startsWithWord("opaque") { return try parseOpaque() }
        let token = cursor.numberToken()
        if let i = Int(token) { return .int(i) }
        if let f = Float(token) { return .float(f) }
        throw cursor.error("expected an attribute value, found '\(token)'", at: at)
    }

    private func parseDense() throws -> Tensor {
        try cursor.expect("dense")
        try cursor.expect("<")
        let tensor = try parseTensorLiteral()
        try cursor.expect(">", "closing dense<...>")
        return tensor
    }

    private func parseOpaque() throws -> AttributeValue {
        try cursor.expect("opaque")
        try cursor.expect("<")
        let type = try cursor.integer("an attribute type number")
        try cursor.expect(":")
        let hexAt = cursor.offset
        let hex = Array(cursor.numberToken().utf8)
        guard hex.count % 2 == 0 else { throw cursor.error("odd number of hex digits", at: hexAt) }
        var bytes: [UInt8] = []
        var i = 0
        while i < hex.count {
            guard let b = UInt8(String(decoding: hex[i..<i + 2], as: UTF8.self), radix: 16) else {
                throw cursor.error("bad hex byte", at: hexAt)
            }
            bytes.append(b)
            i += 2
        }
        try cursor.expect(">", "closing opaque<...>")
        guard let type32 = Int32(exactly: type) else { throw cursor.error("attribute type out of range", at: hexAt) }
        return .opaque(type: type32, packedAttribute: bytes)
    }

    /// After `[`: `] : kind` for empty lists, else elements of one kind.
    private func parseAttributeList() throws -> AttributeValue {
        if cursor.consume("]") {
            try cursor.expect(":", "and the element kind of an empty list")
            cursor.skipTrivia()
            let at = cursor.offset
            switch try cursor.name("a list kind") {
            case "floats": return .floats([])
            case "ints": return .ints([])
            case "strings": return .strings([])
            case "tensors": return .tensors([])
            case "graphs": return .graphs([])
            case let other: throw cursor.error("unknown list kind '\(other)'", at: at)
            }
        }
        cursor.skipTrivia()
        if cursor.peek == 34 {
            var items: [String] = []
            repeat { cursor.skipTrivia(); items.append(try cursor.quotedString()) } while cursor.consume(",")
            try cursor.expect("]")
            return .strings(items)
        }
        if cursor.startsWithWord("dense") {
            var items: [Tensor] = []
            repeat { cursor.skipTrivia(); items.append(try parseDense()) } while cursor.consume(",")
            try cursor.expect("]")
            return .tensors(items)
        }
        if cursor.startsWithWord("graph") {
            var items: [Graph] = []
            repeat { cursor.skipTrivia(); items.append(try parseSubgraph()) } while cursor.consume(",")
            try cursor.expect("]")
            return .graphs(items)
        }
        var tokens: [(String, SourceOffset)] = []
        repeat {
            cursor.skipTrivia()
            let at = cursor.offset
            tokens.append((cursor.numberToken(), at))
        } while cursor.consume(",")
        try cursor.expect("]")
        if tokens.allSatisfy({ Int($0.0) != nil }) { return .ints(tokens.compactMap { Int($0.0) }) }
        var floats: [Float] = []
        for (text, at) in tokens {
            guard let f = Float(text) else { throw cursor.error("expected a number, found '\(text)'", at: at) }
            floats.append(f)
        }
        return .floats(floats)
    }
}
