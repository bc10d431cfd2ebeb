import Foundation
import SQIR
import Testing
@testable import SQONNX

/// External data: resolved inside the model's folder, memory-mapped, and refused when it
/// points anywhere else or beyond its file.
@Suite struct ExternalDataTests {
    /// A folder `model/` holding `model.onnx` whose initializer 'w' (4 floats) refers to
    /// `location` with the given entries, plus `weights.bin` (64 bytes) and a sibling
    /// folder `outside/` with `secret.bin`.
    struct Layout {
        let root: TemporaryFolder
        let modelPath: String
        var modelFolder: String { root.file("model") }

        init(location: String, offset: String? = nil, length: String? = nil, dims: [Int64] = [4]) throws {
            root = try TemporaryFolder()
            try FileManager.default.createDirectory(atPath: root.file("model"), withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: root.file("outside"), withIntermediateDirectories: true)
            let weights = floatBytes((0..<16).map { Float($0) })
            try Data(weights).write(to: URL(fileURLWithPath: root.file("model/weights.bin")))
            try Data(weights).write(to: URL(fileURLWithPath: root.file("outside/secret.bin")))
            var entries = [("location", location)]
            if let offset { entries.append(("offset", offset)) }
            if let length { entries.append(("length", length)) }
            let tensor = tensorProto("w", dims: dims, external: entries)
            modelPath = root.file("model/model.onnx")
            try Data(handBuiltModel(initializers: [tensor])).write(to: URL(fileURLWithPath: modelPath))
        }
    }

    @Test func readsMappedBytesAtTheOffset() throws {
        let layout = try Layout(location: "weights.bin", offset: "16", length: "16")
        let model = try ONNXDecoder().decode(file: layout.modelPath)
        let tensor = try #require(model.graph.initializers.first?.constant)
        #expect(tensor.elements(as: Float.self) == [4, 5, 6, 7])
        #expect(tensor.storage.owner is MappedRange)
    }

    /// A tensor borrowed from external data gives its whole pages back when the last copy of
    /// it goes (a pass replaced the weight); the bytes read the same afterwards.
    @Test func releasedTensorsDropTheirPages() throws {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let folder = try TemporaryFolder()
        let values = (0..<(4 * page / 4)).map { Float($0) }  // 4 pages of floats
        try Data(floatBytes(values)).write(to: URL(fileURLWithPath: folder.file("w.bin")))
        let mapping = try MappedFile(path: folder.file("w.bin"))
        // Whole pages inside the range only: [100, 100 + 2 pages) holds one whole page.
        #expect(mapping.dropPages(offset: 100, count: 2 * page) == page)
        #expect(mapping.dropPages(offset: 0, count: 4 * page) == 4 * page)
        #expect(mapping.dropPages(offset: 1, count: page - 2) == 0)
        #expect(mapping.dropPages(offset: 3 * page, count: 2 * page) == 0, "beyond the end: refused")
        #expect(Array(mapping.bytes.bindMemory(to: Float.self)) == values, "dropped pages are read again")

        let tensor = tensorProto("w", dims: [Int64(2 * page / 4)], external: [("location", "w.bin"), ("offset", String(page))])
        let modelPath = try folder.write(handBuiltModel(initializers: [tensor]), to: "model.onnx")
        var model: Model? = try ONNXDecoder().decode(file: modelPath)
        let file: MappedFile
        do {  // no reference to the range may outlive the model
            let range = try #require(model?.graph.initializers.first?.constant?.storage.owner as? MappedRange)
            file = range.file
            #expect(range.offset == page && range.count == 2 * page)
        }
        #expect(model?.graph.initializers.first?.constant?.elements(as: Float.self) == Array(values[(page / 4)..<(3 * page / 4)]))
        #expect(file.droppedBytes.load(ordering: .relaxed) == 0)
        model = nil
        #expect(file.droppedBytes.load(ordering: .relaxed) == 2 * page)
    }

    @Test func lengthMayBeOmitted() throws {
        let layout = try Layout(location: "./weights.bin", offset: "60", dims: [1])
        let model = try ONNXDecoder().decode(file: layout.modelPath)
        #expect(model.graph.initializers.first?.constant?.elements(as: Float.self) == [15])
    }

    @Test func symlinkInsideTheFolderIsAllowed() throws {
        let layout = try Layout(location: "link.bin")
        try FileManager.default.createSymbolicLink(atPath: layout.root.file("model/link.bin"), withDestinationPath: "weights.bin")
        let model = try ONNXDecoder().decode(file: layout.modelPath)
        #expect(model.graph.initializers.first?.constant?.elements(as: Float.self) == [0, 1, 2, 3])
    }

    struct Refusal: CustomStringConvertible, Sendable {
        var name: String
        var location: String
        var offset: String? = nil
        var length: String? = nil
        var symlinkTo: String? = nil
        var mentions: String
        var description: String { name }
    }

    static let refusals: [Refusal] = [
        Refusal(name: "absolute path", location: "/etc/passwd", mentions: "absolute path"),
        Refusal(name: "dot-dot escape", location: "../outside/secret.bin", mentions: "'..'"),
        Refusal(name: "dot-dot inside a path", location: "sub/../../outside/secret.bin", mentions: "'..'"),
        Refusal(name: "symlink leaving the folder", location: "escape.bin", symlinkTo: "../outside/secret.bin", mentions: "outside the model's folder"),
        Refusal(name: "symlinked folder leaving the folder", location: "dir/secret.bin", symlinkTo: "DIR:../outside", mentions: "outside the model's folder"),
        Refusal(name: "missing file", location: "nothing.bin", mentions: "does not exist"),
        Refusal(name: "offset beyond the file", location: "weights.bin", offset: "1000", mentions: "beyond the end"),
        Refusal(name: "length beyond the file", location: "weights.bin", offset: "56", length: "16", mentions: "beyond the end"),
        Refusal(name: "length not matching dims", location: "weights.bin", length: "12", mentions: "does not match"),
        Refusal(name: "negative offset", location: "weights.bin", offset: "-4", mentions: "not a non-negative integer"),
        Refusal(name: "huge offset", location: "weights.bin", offset: "9223372036854775800", mentions: "beyond the end"),
        Refusal(name: "no location", location: "", mentions: "no 'location'"),
        Refusal(name: "a folder, not a file", location: "sub", symlinkTo: "MKDIR", mentions: "not a regular file"),
    ]

    @Test(arguments: refusals)
    func refused(_ refusal: Refusal) throws {
        let layout = try Layout(location: refusal.location, offset: refusal.offset, length: refusal.length)
        if let target = refusal.symlinkTo {
            let link = layout.root.file("model/" + (refusal.location.split(separator: "/").first.map(String.init) ?? ""))
            if target == "MKDIR" {
                try FileManager.default.createDirectory(atPath: link, withIntermediateDirectories: true)
            } else if target.hasPrefix("DIR:") {
                try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: String(target.dropFirst(4)))
            } else {
                try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
            }
        }
        do {
            _ = try ONNXDecoder().decode(file: layout.modelPath)
            Issue.record("\(refusal.name): accepted")
        } catch {
            guard case .externalData(let file, let location, _) = error else {
                Issue.record("\(refusal.name): unexpected error \(error)")
                return
            }
            #expect(file == layout.modelPath)
            #expect(location == "initializer 'w'")
            #expect(error.description.contains(refusal.mentions), "\(refusal.name): \(error)")
        }
    }

    @Test func bytesWithoutAFolderCannotUseExternalData() throws {
        let bytes = handBuiltModel(initializers: [tensorProto("w", dims: [4], external: [("location", "weights.bin")])])
        #expect(throws: ONNXError.self) { _ = try ONNXDecoder().decode(bytes: bytes) }
    }

    @Test func writingExternalDataAlignsOffsetsAndKeepsSmallTensorsInline() throws {
        let folder = try TemporaryFolder()
        let big = tensorProto("big", dims: [300], raw: floatBytes((0..<300).map { Float($0) }))
        let odd = tensorProto("odd", dims: [257], raw: floatBytes((0..<257).map { -Float($0) }))
        let small = tensorProto("small", dims: [2], raw: floatBytes([1, 2]))
        let source = try folder.write(handBuiltModel(initializers: [big, small, odd]), to: "in.onnx")
        let model = try ONNXDecoder().decode(file: source)
        let output = folder.file("out.onnx")
        try ONNXEncoder(options: .init(externalData: true)).write(model, to: output)
        let reread = try ONNXDecoder().decode(file: output)
        #expect(differences(model, reread).isEmpty)
        let owners = reread.graph.initializers.map { $0.constant?.storage.owner is MappedRange }
        #expect(owners == [true, false, true])
        let dataSize = try FileManager.default.attributesOfItem(atPath: output + ".data")[.size] as? Int
        #expect(dataSize == 1216 + 1028)  // 'odd' starts at 1216, the first multiple of 64 after 1200
        #expect(try folder.contents() == ["in.onnx", "out.onnx", "out.onnx.data"])
    }

    @Test func largeModelsSwitchToExternalDataAutomatically() throws {
        let folder = try TemporaryFolder()
        let big = tensorProto("big", dims: [1024], raw: floatBytes(Array(repeating: 0.5, count: 1024)))
        let model = try ONNXDecoder().decode(bytes: handBuiltModel(initializers: [big]))
        let limited = ONNXEncoder(options: .init(maxInlineBytes: 2000))
        #expect(throws: ONNXError.self) { _ = try limited.encode(model) }
        let output = folder.file("auto.onnx")
        try limited.write(model, to: output)
        #expect(FileManager.default.fileExists(atPath: output + ".data"))
        #expect(differences(model, try ONNXDecoder().decode(file: output)).isEmpty)
    }
}
