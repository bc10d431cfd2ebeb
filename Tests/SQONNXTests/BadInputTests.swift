import Foundation
import SQIR
import Testing
@testable import SQONNX

/// Malformed and hostile files: each gives a typed `ONNXError` naming the file (and the
/// tensor or node), never a crash.
@Suite struct BadInputTests {
    /// What a case expects: the error kind and text its message must contain.
    struct Case: CustomStringConvertible, Sendable {
        var name: String
        var bytes: @Sendable () -> [UInt8]
        var kind: @Sendable (ONNXError) -> Bool
        var mentions: [String]
        var description: String { name }
    }

    static func isMalformed(_ e: ONNXError) -> Bool { if case .malformed = e { return true } else { return false } }
    static func isVerification(_ e: ONNXError) -> Bool { if case .verification = e { return true } else { return false } }
    static func isInvalidTensor(_ e: ONNXError) -> Bool { if case .invalidTensor = e { return true } else { return false } }
    static func isTooLarge(_ e: ONNXError) -> Bool { if case .tensorTooLarge = e { return true } else { return false } }

    static let cases: [Case] = [
        Case(name: "empty file", bytes: { [] }, kind: { $0 == .emptyFile(file: $0.file) }, mentions: ["empty"]),
        Case(name: "random bytes", bytes: { randomBytes(seed: 1, count: 4096) }, kind: isMalformed, mentions: ["not a valid ONNX model"]),
        Case(name: "random bytes, short", bytes: { randomBytes(seed: 7, count: 3) }, kind: isMalformed, mentions: ["not a valid ONNX model"]),
        Case(name: "text file", bytes: { Array("name,value\n1,2\n".utf8) }, kind: isMalformed, mentions: ["not a valid ONNX model"]),
        Case(name: "wrong wire type for the graph", bytes: {
            var model = ProtoWriter()
            model.varint(F.graph, 5)
            return model.bytes
        }, kind: isMalformed, mentions: ["protobuf parser rejected"]),
        Case(name: "no graph", bytes: {
            var model = ProtoWriter()
            model.varint(F.irVersion, 8)
            return model.bytes
        }, kind: { if case .invalidModel = $0 { return true } else { return false } }, mentions: ["no graph"]),
        Case(name: "undefined value", bytes: {
            handBuiltModel(nodes: [relu("nope", "y", name: "uses_undefined")])
        }, kind: isVerification, mentions: ["node 'uses_undefined' (Relu)", "'nope' is not defined"]),
        Case(name: "cycle", bytes: {
            handBuiltModel(nodes: [relu("b", "a", name: "first"), relu("a", "b", name: "second")], outputs: ["a"])
        }, kind: isVerification, mentions: ["cycle", "node '"]),
        Case(name: "raw_data length mismatch", bytes: {
            handBuiltModel(initializers: [tensorProto("w", dims: [3], raw: floatBytes([1, 2]))])
        }, kind: isInvalidTensor, mentions: ["initializer 'w'", "raw_data has 8 bytes", "needs 12"]),
        Case(name: "negative dim", bytes: {
            handBuiltModel(initializers: [tensorProto("w", dims: [-1], raw: [])])
        }, kind: isInvalidTensor, mentions: ["initializer 'w'", "negative"]),
        Case(name: "dims product overflows", bytes: {
            handBuiltModel(initializers: [tensorProto("bomb", dims: [1 << 40, 1 << 40], raw: [])])
        }, kind: isTooLarge, mentions: ["initializer 'bomb'", "overflow"]),
        Case(name: "dims product above the limit", bytes: {
            handBuiltModel(initializers: [tensorProto("bomb", dims: [1 << 20, 1 << 20], raw: [])])
        }, kind: isTooLarge, mentions: ["initializer 'bomb'", "limit"]),
        Case(name: "unknown dtype", bytes: {
            handBuiltModel(initializers: [tensorProto("w", dataType: 99, dims: [1], raw: [0])])
        }, kind: { if case .unknownDType(_, _, 99) = $0 { return true } else { return false } }, mentions: ["initializer 'w'", "data type 99"]),
        Case(name: "float8 dtype", bytes: {
            handBuiltModel(initializers: [tensorProto("w", dataType: 17, dims: [1], raw: [0])])
        }, kind: { if case .unknownDType(_, _, 17) = $0 { return true } else { return false } }, mentions: ["initializer 'w'"]),
        Case(name: "no data", bytes: {
            handBuiltModel(initializers: [tensorProto("w", dims: [4])])
        }, kind: isInvalidTensor, mentions: ["initializer 'w'", "no data"]),
        Case(name: "initializer without a name", bytes: {
            handBuiltModel(initializers: [tensorProto("", dims: [1], raw: floatBytes([1]))])
        }, kind: { if case .invalidModel = $0 { return true } else { return false } }, mentions: ["initializer #0 has no name"]),
        Case(name: "nesting too deep", bytes: { deeplyNestedModel(levels: 200) },
             kind: { if case .nestingTooDeep = $0 { return true } else { return false } }, mentions: ["nest deeper"]),
    ]

    @Test(arguments: cases)
    func refusedWithANamedError(_ testCase: Case) throws {
        let folder = try TemporaryFolder()
        let path = try folder.write(testCase.bytes(), to: "bad.onnx")
        do {
            let model = try ONNXDecoder().decode(file: path)
            Issue.record("\(testCase.name): decoded without error: \(IRPrinter().print(model))")
        } catch {
            #expect(testCase.kind(error), "\(testCase.name): unexpected error \(error)")
            #expect(error.file == path)
            let message = error.description
            #expect(message.hasPrefix(path + ": "), "\(message)")
            for needle in testCase.mentions {
                #expect(message.contains(needle), "\(testCase.name): '\(message)' does not mention '\(needle)'")
            }
        }
    }

    /// A real model cut at 20 points inside its graph: always an error naming the file.
    @Test func truncatedModelsAreRefused() throws {
        let source = try #require(shippedModels().first ?? nodeTestRoot().flatMap { nodeTestModels($0).first })
        let bytes = try [UInt8](Data(contentsOf: source))
        #expect(bytes.count > 100)
        let folder = try TemporaryFolder()
        for point in 1...20 {
            let cut = bytes.count * point / 21
            let path = try folder.write(Array(bytes[..<cut]), to: "truncated-\(point).onnx")
            do {
                _ = try ONNXDecoder().decode(file: path)
                Issue.record("cut at \(cut) of \(bytes.count) bytes decoded without error")
            } catch {
                #expect(error.file == path)
                #expect(error.description.hasPrefix(path + ": "))
            }
        }
    }

    /// Random garbage of many sizes and random flips in a real model never crash.
    @Test func fuzzedBytesNeverCrash() throws {
        let source = try #require(shippedModels().first ?? nodeTestRoot().flatMap { nodeTestModels($0).first })
        let original = try [UInt8](Data(contentsOf: source))
        var generator = SplitMix64(seed: 42)
        for round in 0..<200 {
            var bytes = original
            for _ in 0..<(1 + round % 8) {
                let index = Int(generator.next() % UInt64(bytes.count))
                bytes[index] = UInt8(truncatingIfNeeded: generator.next())
            }
            do {
                let model = try ONNXDecoder().decode(bytes: bytes, fileName: "fuzz-\(round)")
                _ = try ONNXEncoder().encode(model)
            } catch {
                #expect(error.file.hasPrefix("fuzz-"))
            }
        }
    }

    @Test func limitsAreConfigurable() throws {
        let bytes = handBuiltModel(initializers: [tensorProto("w", dims: [256], raw: floatBytes(Array(repeating: 1, count: 256)))])
        #expect(throws: ONNXError.self) {
            _ = try ONNXDecoder(options: .init(maxTensorBytes: 1000)).decode(bytes: bytes)
        }
        let model = try ONNXDecoder(options: .init(maxTensorBytes: 1024)).decode(bytes: bytes)
        #expect(model.graph.initializers.count == 1)
        let deep = deeplyNestedModel(levels: 20)
        #expect(throws: ONNXError.nestingTooDeep(file: "<memory>", limit: 16)) {
            _ = try ONNXDecoder(options: .init(verify: false, maxNestingDepth: 16)).decode(bytes: deep)
        }
    }
}

/// A model whose node holds an If whose branch holds an If ... `levels` deep.
func deeplyNestedModel(levels: Int) -> [UInt8] {
    var graph = ProtoWriter()
    graph.string(F.graphName, "innermost")
    for level in 0..<levels {
        var node = ProtoWriter()
        node.string(F.nodeInput, "c")
        node.string(F.opType, "If")
        node.string(F.nodeName, "if\(level)")
        node.message(5) { attribute in
            attribute.string(1, "then_branch")
            attribute.varint(20, 5)
            attribute.data(6, graph.bytes)
        }
        var outer = ProtoWriter()
        outer.data(F.node, node.bytes)
        outer.string(F.graphName, "level\(level)")
        graph = outer
    }
    var model = ProtoWriter()
    model.varint(F.irVersion, 8)
    model.data(F.graph, graph.bytes)
    return model.bytes
}


func randomBytes(seed: UInt64, count: Int) -> [UInt8] {
    var generator = SplitMix64(seed: seed)
    return (0..<count).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
}
