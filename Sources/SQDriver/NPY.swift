import Foundation
import SQIR

/// Reads and writes NumPy `.npy` files (format versions 1–3, little-endian, C order).
enum NPY {
    struct FormatError: Error, CustomStringConvertible {
        let path: String
        let reason: String
        var description: String { "\(path): not a readable .npy file: \(reason)" }
    }

    static func read(_ path: String) throws -> Tensor {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw FormatError(path: path, reason: "cannot read the file")
        }
        let bytes = [UInt8](data)
        guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1...5]) == Array("NUMPY".utf8) else {
            throw FormatError(path: path, reason: "missing the \\x93NUMPY magic")
        }
        let major = bytes[6]
        var headerLength: Int
        var offset: Int
        if major == 1 {
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            offset = 10
        } else {
            guard bytes.count >= 12 else { throw FormatError(path: path, reason: "truncated header") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            offset = 12
        }
        guard offset + headerLength <= bytes.count else { throw FormatError(path: path, reason: "truncated header") }
        let header = String(decoding: bytes[offset..<(offset + headerLength)], as: UTF8.self)
        offset += headerLength

        guard let descr = field("descr", in: header), let shapeText = field("shape", in: header) else {
            throw FormatError(path: path, reason: "header lacks descr or shape")
        }
        if let order = field("fortran_order", in: header), order.hasPrefix("True") {
            throw FormatError(path: path, reason: "Fortran-order arrays are not supported")
        }
        let typeCode = descr.trimmingCharacters(in: CharacterSet(charactersIn: "'\" "))
        guard let dtype = dtypeFor(typeCode) else {
            throw FormatError(path: path, reason: "unsupported dtype '\(typeCode)'")
        }
        let dims = shapeText.trimmingCharacters(in: CharacterSet(charactersIn: "() "))
            .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        var shape: [Int] = []
        for d in dims {
            guard let v = Int(d), v >= 0 else { throw FormatError(path: path, reason: "bad shape '\(shapeText)'") }
            shape.append(v)
        }
        guard let count = checkedElementCount(shape), let size = dtype.byteSize,
              case let (byteCount, false) = count.multipliedReportingOverflow(by: size),
              offset + byteCount <= bytes.count else {
            throw FormatError(path: path, reason: "data is shorter than shape \(shape) needs")
        }
        let storage = bytes[offset..<(offset + byteCount)].withUnsafeBytes { TensorStorage(copying: $0) }
        return try Tensor(dtype: dtype, shape: shape, storage: storage)
    }

    static func write(_ tensor: Tensor, to path: String) throws {
        guard let code = typeCode(tensor.dtype) else {
            throw FormatError(path: path, reason: "cannot write \(tensor.dtype) as .npy")
        }
        let shapeText = tensor.shape.isEmpty ? "()" : tensor.shape.count == 1 ? "(\(tensor.shape[0]),)"
            : "(" + tensor.shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(code)', 'fortran_order': False, 'shape': \(shapeText), }"
        let total = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - total % 64) % 64) + "\n"
        var out = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let n = header.utf8.count
        out.append(contentsOf: [UInt8(n & 0xFF), UInt8(n >> 8)])
        out.append(contentsOf: Array(header.utf8))
        out.append(contentsOf: tensor.storage.bytes)
        try out.write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    private static func field(_ key: String, in header: String) -> String? {
        guard let r = header.range(of: "'\(key)':") else { return nil }
        let rest = header[r.upperBound...].trimmingCharacters(in: .whitespaces)
        if rest.hasPrefix("(") {
            guard let close = rest.firstIndex(of: ")") else { return nil }
            return String(rest[...close])
        }
        return String(rest.prefix { $0 != "," && $0 != "}" })
    }

    private static let codes: [(String, DType)] = [
        ("<f4", .float), ("<f8", .double), ("<f2", .float16), ("|i1", .int8), ("|u1", .uint8),
        ("<i2", .int16), ("<u2", .uint16), ("<i4", .int32), ("<u4", .uint32), ("<i8", .int64),
        ("<u8", .uint64), ("|b1", .bool),
    ]

    private static func dtypeFor(_ code: String) -> DType? {
        let normalized = code.replacingOccurrences(of: "=", with: "<")
        return codes.first { $0.0 == normalized || ($0.0.hasPrefix("|") && $0.0.dropFirst() == normalized.dropFirst()) }?.1
    }

    private static func typeCode(_ dtype: DType) -> String? { codes.first { $0.1 == dtype }?.0 }
}
