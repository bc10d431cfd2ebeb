import Foundation
import SQIR
import Testing
@testable import SQONNX

/// Saving never destroys a file: the input is never overwritten, failures leave the previous
/// output intact, and no temporary file is ever left behind.
@Suite struct AtomicSaveTests {
    static func sampleModel(in folder: TemporaryFolder, name: String = "in.onnx") throws -> (path: String, model: Model) {
        let weight = tensorProto("w", dims: [2], raw: floatBytes([3, 4]))
        let path = try folder.write(handBuiltModel(initializers: [weight]), to: name)
        return (path, try ONNXDecoder().decode(file: path))
    }

    @Test func refusesToOverwriteTheInput() throws {
        let folder = try TemporaryFolder()
        let (path, model) = try Self.sampleModel(in: folder)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        try FileManager.default.createSymbolicLink(atPath: folder.file("alias.onnx"), withDestinationPath: "in.onnx")
        try FileManager.default.linkItem(atPath: path, toPath: folder.file("hardlink.onnx"))
        for output in [path, folder.path + "/./in.onnx", folder.file("alias.onnx"), folder.file("hardlink.onnx")] {
            #expect(throws: ONNXError.outputIsInput(file: output)) { try ONNXEncoder().write(model, to: output) }
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
        #expect(try folder.contents() == ["alias.onnx", "hardlink.onnx", "in.onnx"])
    }

    @Test func refusesToOverwriteTheExternalDataItReads() throws {
        let folder = try TemporaryFolder()
        let (_, model) = try Self.sampleModel(in: folder)
        let external = folder.file("ext.onnx")
        try ONNXEncoder(options: .init(externalData: true, externalDataThreshold: 0)).write(model, to: external)
        let mapped = try ONNXDecoder().decode(file: external)
        #expect(throws: ONNXError.outputIsInput(file: external + ".data")) {
            try ONNXEncoder().write(mapped, to: external + ".data")
        }
        // Writing to another name is fine and reads the mapped bytes.
        try ONNXEncoder().write(mapped, to: folder.file("copy.onnx"))
        #expect(differences(model, try ONNXDecoder().decode(file: folder.file("copy.onnx"))).isEmpty)
    }

    @Test func successLeavesOnlyTheOutput() throws {
        let folder = try TemporaryFolder()
        let (_, model) = try Self.sampleModel(in: folder)
        try ONNXEncoder().write(model, to: folder.file("out.onnx"))
        try ONNXEncoder().write(model, to: folder.file("out.onnx"))  // replacing an existing output
        #expect(try folder.contents() == ["in.onnx", "out.onnx"])
        let mode = try FileManager.default.attributesOfItem(atPath: folder.file("out.onnx"))[.posixPermissions] as? Int
        #expect(mode.map { $0 & 0o044 } == 0o044, "the output is readable like any other file")
    }

    @Test func failureLeavesThePreviousOutputAndNoTemporaryFile() throws {
        let folder = try TemporaryFolder()
        let (_, model) = try Self.sampleModel(in: folder)
        let output = folder.file("out.onnx")
        try ONNXEncoder().write(model, to: output)
        let before = try Data(contentsOf: URL(fileURLWithPath: output))
        // A node whose saved attribute bytes are corrupt cannot be encoded.
        let broken = try Self.sampleModel(in: folder, name: "other.onnx").model
        broken.graph.nodes.first?.attributes.append(Attribute("bad", .opaque(type: 11, packedAttribute: [0xFF, 0xFF])))
        do {
            try ONNXEncoder().write(broken, to: output)
            Issue.record("a corrupt opaque attribute was written")
        } catch {
            #expect(error.file == output)
            #expect(error.description.contains("attribute 'bad'"))
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: output)) == before)
        #expect(try folder.contents() == ["in.onnx", "other.onnx", "out.onnx"])
    }

    @Test func missingFolderIsAWriteError() throws {
        let folder = try TemporaryFolder()
        let (_, model) = try Self.sampleModel(in: folder)
        let output = folder.file("no/such/folder/out.onnx")
        #expect(throws: ONNXError.self) { try ONNXEncoder().write(model, to: output) }
        #expect(try folder.contents() == ["in.onnx"])
    }

    @Test func namedTemporaryFallbackCleansUp() throws {
        let folder = try TemporaryFolder()
        do {
            let writer = try AtomicFileWriter(destination: folder.file("x.bin"), preferUnnamed: false)
            try [UInt8](repeating: 7, count: 100).withUnsafeBytes { try writer.write($0) }
            #expect(try folder.contents().count == 1, "the named temporary exists while writing")
        }
        #expect(try folder.contents().isEmpty, "dropping an uncommitted writer removes its temporary")
        let writer = try AtomicFileWriter(destination: folder.file("x.bin"), preferUnnamed: false)
        try [UInt8](repeating: 7, count: 100).withUnsafeBytes { try writer.write($0) }
        try writer.commit()
        #expect(try folder.contents() == ["x.bin"])
    }
}
