import Foundation
import SQIR
import Testing
@testable import SQONNX

/// Single TensorProto files (`test_data_set_0/input_N.pb`).
@Suite struct TensorFileTests {
    @Test func backendTestDataDecodesAndRoundTrips() throws {
        guard let root = nodeTestRoot() else {
            Issue.record("ONNX backend node tests not found: run tools/setup.sh")
            return
        }
        var decoded = 0
        for model in nodeTestModels(root) {
            let folder = model.deletingLastPathComponent().appendingPathComponent("test_data_set_0")
            for name in (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [] where name.hasSuffix(".pb") {
                let path = folder.appendingPathComponent(name).path
                do {
                    let (tensor, tensorName) = try ONNXDecoder().decodeTensor(file: path)
                    decoded += 1
                    let again = try ONNXDecoder().decodeTensor(bytes: ONNXEncoder().encodeTensor(tensor, name: tensorName))
                    #expect(again.tensor.isIdentical(to: tensor) && again.name == tensorName, "\(path)")
                } catch {
                    // Sequences, maps, optionals and float8/int4 tensors are not SQIR tensors.
                    #expect(error.file == path)
                }
            }
        }
        #expect(decoded > 2500, "decoded \(decoded) tensor files")
    }

    /// test_abs: |input| equals the expected output stored by ONNX (data, not our encoder).
    @Test func valuesMatchTheBackendData() throws {
        let root = try #require(nodeTestRoot(), "ONNX backend node tests not found: run tools/setup.sh")
        let folder = root.appendingPathComponent("test_abs/test_data_set_0")
        let input = try ONNXDecoder().decodeTensor(file: folder.appendingPathComponent("input_0.pb").path)
        let output = try ONNXDecoder().decodeTensor(file: folder.appendingPathComponent("output_0.pb").path)
        #expect(input.tensor.dtype == .float && input.tensor.shape == [3, 4, 5] && input.name == "x")
        #expect(input.tensor.elements(as: Float.self).map(abs) == output.tensor.elements(as: Float.self))
    }

    @Test func writtenAtomicallyAndErrorsNameTheFile() throws {
        let folder = try TemporaryFolder()
        let path = folder.file("t.pb")
        try ONNXEncoder().writeTensor(Tensor(shape: [2], values: [Int64(5), -6]), name: "ids", to: path)
        let (tensor, name) = try ONNXDecoder().decodeTensor(file: path)
        #expect(tensor.elements(as: Int64.self) == [5, -6] && name == "ids")
        #expect(try folder.contents() == ["t.pb"])
        let bad = try folder.write(tensorProto("w", dims: [3], raw: [1, 2]), to: "bad.pb")
        #expect(throws: ONNXError.invalidTensor(file: bad, location: "tensor 'w'", reason: "raw_data has 2 bytes, f32 [3] needs 12")) {
            _ = try ONNXDecoder().decodeTensor(file: bad)
        }
        let empty = try folder.write([], to: "empty.pb")
        #expect(throws: ONNXError.emptyFile(file: empty)) { _ = try ONNXDecoder().decodeTensor(file: empty) }
    }
}
