import SQIR
import SQONNX

/// What one fuzz input did. Anything other than a crash is fine: the point of fuzzing is
/// that every input ends in one of these.
enum FuzzOutcome: CustomStringConvertible {
    /// Decoded, verified (and lowered, when the runtime is there): a valid model.
    case accepted(nodes: Int)
    /// Refused with a typed error; `stage` says which step refused it.
    case refused(stage: String, message: String)

    var description: String {
        switch self {
        case .accepted(let nodes): return "ok (\(nodes) nodes)"
        case .refused(let stage, let message): return "\(stage) refused: \(message)"
        }
    }
}

/// decode -> verify -> print -> encode + decode again -> lower, each step on what the
/// previous one accepted.
///
/// Limits are lower than the CLI's defaults so that one input cannot eat the fuzzer's
/// memory: a tensor may need at most `maxTensorBytes` (dims products above it are refused
/// before allocation, which is exactly what the allocation-bomb cases exercise).
enum FuzzHarness {
    static let maxTensorBytes = 64 << 20
    /// Graphs larger than this are decoded and verified but not printed or lowered (time cap).
    static let maxNodesToLower = 2_000

    /// `fileName` names the input in errors; with `modelDirectory` (replay of a file) external
    /// data is resolved there, else (in-memory fuzzing) external data is refused.
    static func check(_ bytes: [UInt8], fileName: String = "<fuzz>", modelDirectory: String? = nil) -> FuzzOutcome {
        let options = ONNXDecoder.Options(verify: false, maxTensorBytes: maxTensorBytes, maxNestingDepth: 64)
        let model: Model
        do {
            model = try ONNXDecoder(options: options).decode(bytes: bytes, fileName: fileName, modelDirectory: modelDirectory)
        } catch {
            return .refused(stage: "decode", message: error.description)
        }
        do {
            try Verifier(file: fileName).verify(model)
        } catch {
            return .refused(stage: "verify", message: "\(error)")
        }
        let nodes = model.graph.nodes.count
        guard nodes <= maxNodesToLower else { return .accepted(nodes: nodes) }
        _ = IRPrinter(maxConstantElements: 4).print(model)
        // Whatever decodes must encode, and the encoding must decode again.
        do {
            let encoded = try ONNXEncoder().encode(model)
            _ = try ONNXDecoder(options: options).decode(bytes: encoded, fileName: fileName + " (re-encoded)", modelDirectory: modelDirectory)
        } catch {
            return .refused(stage: "re-encode", message: error.description)
        }
        if let refusal = FuzzLowering.lower(model, maxTensorBytes: maxTensorBytes) {
            return .refused(stage: "lower", message: refusal)
        }
        return .accepted(nodes: nodes)
    }
}
