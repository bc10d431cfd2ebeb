import SQIR

extension ExecutionPlan {
    /// Checks the caller's inputs against the graph's declared inputs and puts them in
    /// their slots: no missing or unknown names, dtype and rank as declared, known dims
    /// equal, and each symbolic dim the same size everywhere within this run.
    func bindInputs(_ given: [String: Tensor], into slots: inout [Tensor?]) throws {
        let known = Set(inputs.map(\.name))
        let unknown = given.keys.filter { !known.contains($0) }.sorted()
        if let name = unknown.first {
            throw IRError(location: "input '\(name)'", reason: "the model has no input named '\(name)' (inputs: \(inputNames.joined(separator: ", ")))")
        }
        var symbols: [String: (size: Int, input: String)] = [:]
        for spec in inputs {
            guard let tensor = given[spec.name] ?? spec.defaultValue else {
                throw IRError(location: "input '\(spec.name)'", reason: "missing input '\(spec.name)'"
                              + (spec.type.map { " of type \($0)" } ?? ""))
            }
            if let type = spec.type {
                try check(tensor, against: type, input: spec.name, symbols: &symbols)
            }
            slots[spec.slot] = tensor
        }
    }

    private func check(
        _ tensor: Tensor, against type: TensorType, input name: String,
        symbols: inout [String: (size: Int, input: String)]
    ) throws {
        let location = "input '\(name)'"
        guard tensor.dtype == type.dtype else {
            throw IRError(location: location, reason: "expected element type \(type.dtype), got \(tensor.dtype)")
        }
        guard let dims = type.dims else { return }
        guard dims.count == tensor.rank else {
            throw IRError(location: location, reason: "expected rank \(dims.count) (\(type)), got shape \(tensor.shape)")
        }
        for (i, (dim, size)) in zip(dims, tensor.shape).enumerated() {
            switch dim {
            case .known(let expected) where expected != size:
                throw IRError(location: location, reason: "dimension \(i) must be \(expected) (\(type)), got shape \(tensor.shape)")
            case .symbolic(let symbol):
                if let seen = symbols[symbol], seen.size != size {
                    throw IRError(location: location, reason: "dimension \(i) ('\(symbol)') is \(size), but '\(symbol)' is \(seen.size) in input '\(seen.input)'")
                }
                symbols[symbol] = (size, name)
            default:
                break
            }
        }
    }
}
