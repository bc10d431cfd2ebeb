import Foundation
import SQIR
import SQONNX

/// Reads and writes NumPy `.npy` files (format versions 1–3, little-endian, C order).
enum NPY {
    struct FormatError: Error, CustomStringConvertible {
        let path: String
        let reason: String
        var description: String { "\(path): not a readable .npy file: \(reason)" }
    }

    /// Reading is shared with calibration (SQONNX's `NpyReader`).
    static func read(_ path: String) throws -> Tensor {
        try NpyReader.read(path: path)
    }

    /// NumPy has no bfloat16: such tensors are written widened to float32 (exact).
    static func write(_ tensor: Tensor, to path: String) throws {
        if tensor.dtype == .bfloat16, let widened = tensor.floatElements() {
            return try write(Tensor(shape: tensor.shape, values: widened), to: path)
        }
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
        // Header, then the tensor's bytes as they are (no copy of a 50 MB logits tensor),
        // into a temporary file renamed over `path` (atomic, as Data.write(.atomic)).
        let temporary = path + ".tmp-\(getpid())"
        guard FileManager.default.createFile(atPath: temporary, contents: nil),
              let handle = FileHandle(forWritingAtPath: temporary) else {
            throw DriverError("\(path): cannot write (creating \(temporary) failed)")
        }
        do {
            try handle.write(contentsOf: out)
            let bytes = tensor.storage.bytes
            if let base = bytes.baseAddress, bytes.count > 0 {
                try handle.write(contentsOf: Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: base),
                                                  count: bytes.count, deallocator: .none))
            }
            try handle.close()
            if rename(temporary, path) != 0 {
                throw DriverError("\(path): cannot write: \(String(cString: strerror(errno)))")
            }
        } catch {
            try? handle.close()
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        }
    }

    private static let codes: [(String, DType)] = [
        ("<f4", .float), ("<f8", .double), ("<f2", .float16), ("|i1", .int8), ("|u1", .uint8),
        ("<i2", .int16), ("<u2", .uint16), ("<i4", .int32), ("<u4", .uint32), ("<i8", .int64),
        ("<u8", .uint64), ("|b1", .bool),
    ]

    private static func typeCode(_ dtype: DType) -> String? { codes.first { $0.1 == dtype }?.0 }
}
