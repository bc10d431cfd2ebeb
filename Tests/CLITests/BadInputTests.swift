import Foundation
import SQIR
import Testing

/// Bad input end to end: each malformed model goes through the real `sqopt` binary, which
/// must exit 1 with a one-line message naming the file and the node/tensor/reason, and
/// never crash, hang or die by a signal. The models are built at test time by
/// Fixtures/BadModelScript.swift (or here, byte by byte). docs/robustness.md lists the
/// message each case gives.
@Suite("Bad input through the sqopt CLI")
struct BadInputTests {
    /// A file the loader must refuse, and words its one-line error must contain.
    struct Case: CustomStringConvertible, Sendable {
        let file: String
        let mentions: [String]
        var description: String { file }
    }

    static let refused: [Case] = [
        Case(file: "undefined_input.onnx", mentions: ["uses_ghost", "ghost", "not defined"]),
        Case(file: "cycle.onnx", mentions: ["node_a", "cycle"]),
        Case(file: "raw_data_mismatch.onnx", mentions: ["w_bad", "raw_data"]),
        Case(file: "dims_overflow.onnx", mentions: ["w_overflow"]),
        Case(file: "allocation_bomb.onnx", mentions: ["w_bomb"]),
        Case(file: "negative_dim.onnx", mentions: ["w_negative"]),
        Case(file: "unknown_dtype.onnx", mentions: ["w_dtype", "99"]),
        Case(file: "ext_absolute/model.onnx", mentions: ["w_ext", "external data"]),
        Case(file: "ext_dotdot/model.onnx", mentions: ["w_ext", "external data", ".."]),
        Case(file: "ext_symlink/model.onnx", mentions: ["w_ext", "external data", "link.bin"]),
        Case(file: "ext_missing/model.onnx", mentions: ["w_ext", "external data", "missing.bin"]),
        Case(file: "ext_offset_beyond/model.onnx", mentions: ["w_ext", "external data"]),
        Case(file: "ext_length_beyond/model.onnx", mentions: ["w_ext", "external data"]),
        Case(file: "ext_bad_offset/model.onnx", mentions: ["w_ext", "external data", "offset"]),
    ]

    @Test("refused with a one-line error naming file and tensor/node", arguments: refused)
    func refusedModel(_ testCase: Case) throws {
        let path = try RobustnessSupport.fixture(testCase.file)
        let result = try RobustnessSupport.sqopt(["inspect", path])
        expectRobustCleanFailure(result, mentions: [path] + testCase.mentions)
    }

    @Test("external data inside the model folder loads (the refusals above are not blanket)")
    func externalDataInsideFolderLoads() throws {
        let result = try RobustnessSupport.sqopt(["inspect", try RobustnessSupport.fixture("ext_ok/model.onnx")])
        #expect(result.exitCode == 0, "\(result)")
    }

    @Test("empty file")
    func emptyFile() throws {
        let folder = try RobustnessSupport.temporaryDirectory("empty")
        let path = folder + "/empty.onnx"
        try RobustnessSupport.write([], to: path)
        expectRobustCleanFailure(try RobustnessSupport.sqopt(["inspect", path]), mentions: [path, "empty"])
    }

    @Test("missing file")
    func missingFile() throws {
        let path = try RobustnessSupport.temporaryDirectory("missing") + "/nothing-here.onnx"
        expectRobustCleanFailure(try RobustnessSupport.sqopt(["inspect", path]), mentions: [path])
    }

    @Test("a directory instead of a model")
    func directoryAsModel() throws {
        let path = try RobustnessSupport.temporaryDirectory("dir") + "/model.onnx"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        expectRobustCleanFailure(try RobustnessSupport.sqopt(["inspect", path]), mentions: [path])
    }

    /// A real model cut at 20 points. A cut that happens to fall on a field boundary can
    /// leave a well-formed smaller model, so exit 0 is allowed; most cuts must fail.
    @Test("a real model truncated at 20 points")
    func truncated() throws {
        let original = RobustnessSupport.bytes(RobustnessSupport.repositoryRoot.appendingPathComponent("models/tiny-opt/model.onnx").path)
        try #require(original.count > 1000, "models/tiny-opt/model.onnx is missing: run tools/setup.sh")
        let folder = try RobustnessSupport.temporaryDirectory("truncated")
        var refusedCount = 0
        for point in 1...20 {
            let length = original.count * point / 21
            let path = folder + "/cut-\(length).onnx"
            try RobustnessSupport.write(Array(original.prefix(length)), to: path)
            let result = try RobustnessSupport.sqopt(["inspect", path])
            #expect(result.signal == nil && !result.timedOut, "cut at \(length): \(result)")
            #expect(result.exitCode == 0 || result.exitCode == 1, "cut at \(length): \(result)")
            if result.exitCode == 1 {
                refusedCount += 1
                expectRobustCleanFailure(result, mentions: [path])
            }
        }
        #expect(refusedCount >= 15, "only \(refusedCount) of 20 truncated models were refused")
    }

    @Test("random bytes (20 seeds, 1 B to 64 KiB)")
    func randomBytes() throws {
        let folder = try RobustnessSupport.temporaryDirectory("random")
        var generator = SplitMix64(seed: 0x5EED)
        for index in 0..<20 {
            let count = index == 0 ? 1 : Int(generator.next() % 65_536) + 1
            let bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            let path = folder + "/random-\(index).onnx"
            try RobustnessSupport.write(bytes, to: path)
            expectRobustCleanFailure(try RobustnessSupport.sqopt(["inspect", path]), mentions: [path])
        }
    }

    /// Messages nested 100,000 deep (graph -> node -> attribute -> graph ...), written by hand:
    /// a recursive parser would overflow its stack long before the end.
    @Test("protobuf nesting 100,000 levels deep")
    func deepNesting() throws {
        let path = try RobustnessSupport.temporaryDirectory("nesting") + "/nested.onnx"
        try RobustnessSupport.write(RobustnessProtobufBytes.deeplyNestedModel(levels: 100_000), to: path)
        let result = try RobustnessSupport.sqopt(["inspect", path], timeout: 60)
        expectRobustCleanFailure(result, mentions: [path, "nest"])
    }

    @Test("If subgraphs nested 30 levels: loads or is refused, cleanly")
    func nestedSubgraphs() throws {
        let path = try RobustnessSupport.fixture("nested_subgraphs.onnx")
        let result = try RobustnessSupport.sqopt(["inspect", path], timeout: 60)
        #expect(result.exitCode == 0 || result.exitCode == 1, "\(result)")
        if result.exitCode == 1 { expectRobustCleanFailure(result, mentions: [path]) }
    }
}


/// Protobuf bytes written by hand (wire format: tag = field << 3 | wire type).
enum RobustnessProtobufBytes {
    static func varint(_ value: UInt64) -> [UInt8] {
        var value = value
        var out: [UInt8] = []
        repeat {
            let low = UInt8(value & 0x7F)
            value >>= 7
            out.append(value == 0 ? low : low | 0x80)
        } while value != 0
        return out
    }

    /// Field `field` holding `payload` as a length-delimited submessage.
    static func message(_ field: UInt64, _ payload: [UInt8]) -> [UInt8] {
        varint(field << 3 | 2) + varint(UInt64(payload.count)) + payload
    }

    /// ModelProto.graph(7) -> GraphProto.node(1) -> NodeProto.attribute(5) ->
    /// AttributeProto.g(6) -> GraphProto.node(1) -> ... `levels` times. Every message holds
    /// only the next one, so the file is just headers: lengths are computed inside out,
    /// then the headers are written outermost first.
    static func deeplyNestedModel(levels: Int) -> [UInt8] {
        var lengths: [Int] = []  // payload length of each message, innermost first
        var size = 0
        for level in 0..<levels * 3 {
            let field: UInt64 = [6, 5, 1][level % 3]  // g in attribute, attribute in node, node in graph
            lengths.append(size)
            size += varint(field << 3 | 2).count + varint(UInt64(size)).count
        }
        var out: [UInt8] = []
        out.reserveCapacity(size + 16)
        out += varint(7 << 3 | 2) + varint(UInt64(size))  // ModelProto.graph
        for level in stride(from: levels * 3 - 1, through: 0, by: -1) {
            let field: UInt64 = [6, 5, 1][level % 3]
            out += varint(field << 3 | 2) + varint(UInt64(lengths[level]))
        }
        return out
    }
}
