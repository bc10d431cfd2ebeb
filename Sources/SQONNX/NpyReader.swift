import Foundation
import SQIR

/// Reads NumPy `.npy` files (format versions 1–3): little-endian or byte-order-free numeric
/// dtypes, C order. Enough for calibration samples written by `np.save` (read by the CLI's
/// `CalibrationDirectory`) and for `sqopt run --data` inputs.
public enum NpyReader {
    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // \x93NUMPY

    /// The tensor in the file at `path`; errors name the file.
    public static func read(path: String) throws -> Tensor {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw IRError(file: path, reason: "cannot read: \((error as NSError).localizedDescription)")
        }
        do {
            return try decode([UInt8](data))
        } catch let error as IRError {
            throw error.inFile(path)
        }
    }

    /// Parses the bytes of a `.npy` file.
    public static func decode(_ bytes: [UInt8]) throws -> Tensor {
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else {
            throw IRError(reason: "not a .npy file (bad magic)")
        }
        let major = bytes[6]
        let headerLength: Int
        let headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw IRError(reason: "truncated .npy header") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        default:
            throw IRError(reason: ".npy format version \(major) is not supported")
        }
        guard headerStart + headerLength <= bytes.count else { throw IRError(reason: "truncated .npy header") }
        let header = String(decoding: bytes[headerStart..<(headerStart + headerLength)], as: UTF8.self)
        let (dtype, fortran, shape) = try parseHeader(header)
        guard !fortran else { throw IRError(reason: "Fortran-ordered .npy arrays are not supported (save with np.ascontiguousarray)") }
        guard let count = checkedElementCount(shape), let size = dtype.byteSize else {
            throw IRError(reason: "invalid .npy shape \(shape)")
        }
        let start = headerStart + headerLength
        let (byteCount, overflow) = count.multipliedReportingOverflow(by: size)
        guard !overflow, bytes.count - start == byteCount else {
            throw IRError(reason: ".npy data has \(bytes.count - start) bytes, \(dtype) \(shape) needs \(overflow ? "too many" : String(byteCount))")
        }
        let storage = bytes[start...].withUnsafeBytes { TensorStorage(copying: $0) }
        return try Tensor(dtype: dtype, shape: shape, storage: storage)
    }

    /// Parses `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 16), }`.
    static func parseHeader(_ header: String) throws -> (DType, Bool, [Int]) {
        func field(_ key: String) -> Substring? {
            guard let r = header.range(of: "'\(key)':") else { return nil }
            return header[r.upperBound...].drop { $0 == " " }
        }
        guard let descrField = field("descr"), let quote = descrField.first, quote == "'" || quote == "\"",
              let end = descrField.dropFirst().firstIndex(of: quote) else {
            throw IRError(reason: ".npy header has no 'descr': \(header)")
        }
        let descr = String(descrField[descrField.index(after: descrField.startIndex)..<end])
        let dtype = try dtypeFor(descr)
        let fortran = field("fortran_order").map { $0.hasPrefix("True") } ?? false
        guard let shapeField = field("shape"), shapeField.first == "(", let close = shapeField.firstIndex(of: ")") else {
            throw IRError(reason: ".npy header has no 'shape': \(header)")
        }
        let inner = shapeField[shapeField.index(after: shapeField.startIndex)..<close]
        var shape: [Int] = []
        for part in inner.split(separator: ",") {
            let text = part.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "L", with: "")
            if text.isEmpty { continue }
            guard let d = Int(text), d >= 0 else { throw IRError(reason: ".npy shape '\(inner)' is not a list of sizes") }
            shape.append(d)
        }
        return (dtype, fortran, shape)
    }

    static func dtypeFor(_ descr: String) throws -> DType {
        guard let order = descr.first, let kind = descr.dropFirst().first,
              let size = Int(descr.dropFirst(2)) else {
            throw IRError(reason: ".npy dtype '\(descr)' is not supported")
        }
        guard order == "<" || order == "|" || (order == "=" && isLittleEndian) || size == 1 else {
            throw IRError(reason: "big-endian .npy dtype '\(descr)' is not supported")
        }
        guard let dtype = dtypes["\(kind)\(size)"] else { throw IRError(reason: ".npy dtype '\(descr)' is not supported") }
        return dtype
    }

    /// NumPy type codes (kind and byte size, `descr` without its byte order) sqopt reads.
    static let dtypes: [String: DType] = [
        "f2": .float16, "f4": .float, "f8": .double,
        "i1": .int8, "i2": .int16, "i4": .int32, "i8": .int64,
        "u1": .uint8, "u2": .uint16, "u4": .uint32, "u8": .uint64,
        "b1": .bool,
    ]

    private static var isLittleEndian: Bool { 1.littleEndian == 1 }
}
