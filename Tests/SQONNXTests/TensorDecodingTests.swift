import Foundation
import SQIR
import Testing
@testable import SQONNX

/// Every dtype from raw_data and from the typed fields ONNX defines for it, values checked
/// against the ONNX encoding rules (not against the encoder).
@Suite struct TensorDecodingTests {
    /// Decodes a model whose only initializer is `tensor` and returns that tensor.
    static func decode(_ tensor: [UInt8]) throws -> Tensor {
        let model = try ONNXDecoder().decode(bytes: handBuiltModel(initializers: [tensor]))
        return try #require(model.graph.initializers.first?.constant)
    }

    static func typed(_ dataType: Int64, dims: [Int64], field: Int, varints: [Int64]) -> [UInt8] {
        var tensor = ProtoWriter()
        for d in dims { tensor.varint(F.dims, d) }
        tensor.varint(F.dataType, dataType)
        tensor.string(F.tensorName, "t")
        var packed: [UInt8] = []
        for v in varints { appendVarint(UInt64(bitPattern: v), to: &packed) }
        tensor.data(field, packed)
        return tensor.bytes
    }

    @Test func int32DataCarriesTheSmallTypes() throws {
        let int8 = try Self.decode(Self.typed(3, dims: [3], field: 5, varints: [-128, 0, 127]))
        #expect(int8.dtype == .int8 && int8.elements(as: Int8.self) == [-128, 0, 127])
        let uint8 = try Self.decode(Self.typed(2, dims: [2], field: 5, varints: [255, 1]))
        #expect(uint8.elements(as: UInt8.self) == [255, 1])
        let int16 = try Self.decode(Self.typed(5, dims: [2], field: 5, varints: [-32768, 7]))
        #expect(int16.elements(as: Int16.self) == [-32768, 7])
        let uint16 = try Self.decode(Self.typed(4, dims: [1], field: 5, varints: [65535]))
        #expect(uint16.elements(as: UInt16.self) == [65535])
        let int32 = try Self.decode(Self.typed(6, dims: [2], field: 5, varints: [-5, Int64(Int32.max)]))
        #expect(int32.elements(as: Int32.self) == [-5, Int32.max])
        let bool = try Self.decode(Self.typed(9, dims: [3], field: 5, varints: [1, 0, 1]))
        #expect(bool.dtype == .bool && bool.elements(as: UInt8.self) == [1, 0, 1])
        let half = try Self.decode(Self.typed(10, dims: [2], field: 5, varints: [0x3C00, 0xC000]))  // 1.0, -2.0
        #expect(half.dtype == .float16 && half.doubleValues() == [1, -2])
        let bfloat = try Self.decode(Self.typed(16, dims: [1], field: 5, varints: [0x3FC0]))  // 1.5
        #expect(bfloat.dtype == .bfloat16 && bfloat.doubleValues() == [1.5])
    }

    @Test func wideTypesUseTheirOwnFields() throws {
        let int64 = try Self.decode(Self.typed(7, dims: [2], field: 7, varints: [Int64.min, 42]))
        #expect(int64.elements(as: Int64.self) == [Int64.min, 42])
        let uint32 = try Self.decode(Self.typed(12, dims: [1], field: 11, varints: [Int64(UInt32.max)]))
        #expect(uint32.elements(as: UInt32.self) == [UInt32.max])
        let uint64 = try Self.decode(Self.typed(13, dims: [1], field: 11, varints: [-1]))
        #expect(uint64.elements(as: UInt64.self) == [UInt64.max])

        var floats = ProtoWriter()
        floats.varint(F.dims, 2)
        floats.varint(F.dataType, 1)
        floats.string(F.tensorName, "t")
        floats.data(4, floatBytes([1.5, -0.25]))  // packed fixed32
        #expect(try Self.decode(floats.bytes).elements(as: Float.self) == [1.5, -0.25])

        var doubles = ProtoWriter()
        doubles.varint(F.dims, 1)
        doubles.varint(F.dataType, 11)
        doubles.string(F.tensorName, "t")
        doubles.data(10, [2.5].withUnsafeBytes { Array($0) })
        #expect(try Self.decode(doubles.bytes).elements(as: Double.self) == [2.5])
    }

    @Test func rawDataForEveryNumericType() throws {
        for dtype in DType.allCases where dtype != .string {
            let size = try #require(dtype.byteSize)
            let raw = (0..<(3 * size)).map { UInt8(truncatingIfNeeded: $0 * 37 + 1) }
            let tensor = try Self.decode(tensorProto("t", dataType: Int64(dtype.rawValue), dims: [3], raw: raw))
            #expect(tensor.dtype == dtype)
            #expect(Array(tensor.storage.bytes) == raw, "\(dtype)")
            let aligned = Int(bitPattern: tensor.storage.bytes.baseAddress) % size == 0
            #expect(aligned, "\(dtype) storage is aligned")
        }
    }

    @Test func stringsScalarsAndEmptyTensors() throws {
        var strings = ProtoWriter()
        strings.varint(F.dims, 2)
        strings.varint(F.dataType, 8)
        strings.string(F.tensorName, "t")
        strings.data(6, Array("héllo".utf8))
        strings.data(6, [0xFF, 0x00])
        let text = try Self.decode(strings.bytes)
        #expect(text.dtype == .string && text.strings == [Array("héllo".utf8), [0xFF, 0x00]])

        let scalar = try Self.decode(tensorProto("t", dims: [], raw: floatBytes([7])))
        #expect(scalar.shape == [] && scalar.elements(as: Float.self) == [7])
        let empty = try Self.decode(tensorProto("t", dims: [0, 4], raw: []))
        #expect(empty.count == 0 && empty.shape == [0, 4])
    }

    @Test func largeRawDataIsAdoptedNotCopied() throws {
        let raw = floatBytes((0..<1024).map(Float.init))
        let tensor = try Self.decode(tensorProto("t", dims: [1024], raw: raw))
        #expect(tensor.storage.owner is MallocBlock, "raw_data block taken over from protobuf-c")
        #expect(Int(bitPattern: tensor.storage.bytes.baseAddress) % 64 == 0)
        #expect(Array(tensor.storage.bytes) == raw)
    }

    @Test func comparisonNoticesChanges() throws {
        let bytes = handBuiltModel(initializers: [tensorProto("w", dims: [2], raw: floatBytes([1, 2]))])
        let a = try ONNXDecoder().decode(bytes: bytes)
        let b = try ONNXDecoder().decode(bytes: bytes)
        #expect(differences(a, b).isEmpty)
        b.graph.initializers[0].constant = Tensor(shape: [2], values: [Float(1), 3])
        #expect(!differences(a, b).isEmpty)
        let c = try ONNXDecoder().decode(bytes: bytes)
        c.graph.nodes[0].name = "renamed"
        #expect(!differences(a, c).isEmpty)
    }
}
