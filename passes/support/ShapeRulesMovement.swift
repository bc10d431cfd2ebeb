import SQIR

/// Shape rules of data-movement and reduction ops.
extension ShapeRules {
    static let reductions: Set<String> = [
        "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
        "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare",
    ]

    static func inferMovement(_ node: Node, _ state: inout ShapeInferenceState) -> [TensorType?]? {
        let x = state.type(node.input(0))
        let dims = x?.dims
        func typed(_ d: [Dim]?) -> [TensorType?] { [x.map { TensorType($0.dtype, d) }] }
        if reductions.contains(node.opType) {
            let axes = node.ints("axes") ?? state.constantInts(node.input(1))
            let keep = (node.int("keepdims") ?? 1) != 0
            if axes == nil && node.input(1) != nil { return typed(nil) }
            if (axes ?? []).isEmpty && node.int("noop_with_empty_axes") == 1 { return typed(dims) }
            return typed(reducedDims(dims, axes: (axes ?? []).isEmpty ? nil : axes, keepDims: keep))
        }
        switch node.opType {
        case "Reshape":
            return typed(reshapeDims(dims, state.shapeValue(node.input(1)), allowZero: node.int("allowzero") == 1))
        case "Flatten":
            guard let dims, let axis = DimMath.axis(node.int("axis") ?? 1, rank: dims.count + 1) else { return typed(nil) }
            return typed([DimMath.product(dims[..<axis]), DimMath.product(dims[axis...])])
        case "Transpose":
            guard let dims else { return typed(nil) }
            let perm = node.ints("perm") ?? Array((0..<dims.count).reversed())
            guard perm.count == dims.count, perm.allSatisfy({ (0..<dims.count).contains($0) }) else { return typed(nil) }
            return typed(perm.map { dims[$0] })
        case "Concat":
            return typed(concatDims(node, state))
        case "Split":
            return splitTypes(node, state)
        case "Slice":
            return typed(sliceDims(node, state))
        case "Gather":
            guard let dims, let indices = state.dims(node.input(1)),
                  let axis = DimMath.axis(node.int("axis") ?? 0, rank: dims.count) else { return typed(nil) }
            return typed(Array(dims[..<axis]) + indices + Array(dims[(axis + 1)...]))
        case "GatherElements":
            return typed(state.dims(node.input(1)))
        case "Unsqueeze":
            guard let dims, let axes = node.ints("axes") ?? state.constantInts(node.input(1)) else { return typed(nil) }
            let rank = dims.count + axes.count
            let normalized = Set(axes.compactMap { DimMath.axis($0, rank: rank) })
            guard normalized.count == axes.count else { return typed(nil) }
            var source = dims.makeIterator()
            return typed((0..<rank).map { normalized.contains($0) ? .known(1) : (source.next() ?? .unknown) })
        case "Squeeze":
            guard let dims else { return typed(nil) }
            guard let axes = node.ints("axes") ?? state.constantInts(node.input(1)) else {
                if node.input(1) != nil { return typed(nil) }
                return typed(dims.contains(.unknown) ? nil : dims.filter { $0 != .known(1) })
            }
            let drop = Set(axes.compactMap { DimMath.axis($0, rank: dims.count) })
            return typed(dims.enumerated().filter { !drop.contains($0.offset) }.map(\.element))
        case "Expand":
            guard let shape = state.shapeValue(node.input(1)), !shape.isScalar else { return typed(nil) }
            return typed(DimMath.broadcast([dims, shape.dims.map(nonNegative)]))
        case "Tile":
            guard let dims, let repeats = state.constantInts(node.input(1)), repeats.count == dims.count else { return typed(nil) }
            return typed(zip(dims, repeats).map { d, r in r == 1 ? d : DimMath.product([d, .known(r)]) })
        case "Range":
            return [x.map { TensorType($0.dtype, [rangeLength(node, state)]) }]
        case "Pad":
            guard let dims, let pads = node.ints("pads") ?? state.constantInts(node.input(1)) else { return typed(nil) }
            let axes = state.constantInts(node.input(3)) ?? Array(0..<dims.count)
            guard pads.count == 2 * axes.count else { return typed(nil) }
            var out = dims
            for (k, a) in axes.enumerated() {
                guard let axis = DimMath.axis(a, rank: dims.count) else { return typed(nil) }
                out[axis] = DimMath.sum(DimMath.sum(out[axis], .known(pads[k])), .known(pads[k + axes.count]))
            }
            return typed(out)
        default:
            return nil
        }
    }

    /// Reshape's target: 0 copies the input dim (without allowzero), -1 is inferred.
    static func reshapeDims(_ input: [Dim]?, _ target: ShapeValue?, allowZero: Bool) -> [Dim]? {
        guard let target, !target.isScalar else { return nil }
        var out: [Dim] = []
        var inferredIndex: Int?
        for (i, d) in target.dims.enumerated() {
            switch d {
            case .known(-1):
                inferredIndex = i
                out.append(.unknown)
            case .known(0) where !allowZero:
                out.append(input.flatMap { i < $0.count ? $0[i] : nil } ?? .unknown)
            default:
                out.append(nonNegative(d))
            }
        }
        if let i = inferredIndex, let input {
            var others = out
            others.remove(at: i)
            out[i] = DimMath.inferredDim(input: input, otherOutputDims: others)
        }
        return out
    }

    static func concatDims(_ node: Node, _ state: ShapeInferenceState) -> [Dim]? {
        let parts = node.inputs.map { state.dims($0) }
        guard let first = parts.first ?? nil, let axisAttr = node.int("axis"),
              let axis = DimMath.axis(axisAttr, rank: first.count) else { return nil }
        var out = first
        for part in parts.dropFirst() {
            guard let part, part.count == first.count else { return nil }
            out[axis] = DimMath.sum(out[axis], part[axis])
            for i in out.indices where i != axis && out[i] == .unknown { out[i] = part[i] }
        }
        return out
    }

    static func splitTypes(_ node: Node, _ state: ShapeInferenceState) -> [TensorType?] {
        let x = state.type(node.input(0))
        let count = node.outputs.count
        guard count > 0 else { return [] }
        guard let x, let dims = x.dims, let axis = DimMath.axis(node.int("axis") ?? 0, rank: dims.count) else {
            return Array(repeating: x.map { TensorType($0.dtype, nil) }, count: count)
        }
        var sizes: [Dim]
        if let split = node.ints("split") ?? state.constantInts(node.input(1)), split.count == count {
            sizes = split.map { .known($0) }
        } else if let d = dims[axis].value {
            let chunk = d / count + (d % count == 0 ? 0 : 1)
            sizes = (0..<count).map { i in
                let (used, overflow) = i.multipliedReportingOverflow(by: chunk)
                return .known(overflow ? 0 : min(chunk, max(d - used, 0)))
            }
        } else {
            sizes = Array(repeating: .unknown, count: count)
        }
        return sizes.map { size in
            var out = dims
            out[axis] = size
            return TensorType(x.dtype, out)
        }
    }

    /// Slice with constant starts/ends/axes/steps (attributes before opset 10). A symbolic
    /// dim stays itself for a full slice; `[0:end]` of a known dim with a symbolic end gives
    /// that end (the exporter's `position_ids[:, :seq]`).
    static func sliceDims(_ node: Node, _ state: ShapeInferenceState) -> [Dim]? {
        guard var dims = state.dims(node.input(0)) else { return nil }
        let starts: [Int]?, ends: ShapeValue?, axes: [Int]?, steps: [Int]?
        if state.opset < 10 {
            starts = node.ints("starts"); ends = node.ints("ends").map { ShapeValue(dims: $0.map { .known($0) }, isScalar: false) }
            axes = node.ints("axes"); steps = nil
        } else {
            starts = state.constantInts(node.input(1)); ends = state.shapeValue(node.input(2))
            axes = node.input(3) == nil ? nil : state.constantInts(node.input(3))
            steps = node.input(4) == nil ? nil : state.constantInts(node.input(4))
            if node.input(3) != nil && axes == nil { return nil }
        }
        guard let starts, let ends, ends.dims.count == starts.count else { return nil }
        let axisList = axes ?? Array(0..<starts.count)
        for (k, a) in axisList.enumerated() {
            guard let axis = DimMath.axis(a, rank: dims.count) else { return nil }
            let step = steps.map { k < $0.count ? $0[k] : 1 } ?? 1
            guard step != 0 else { return nil }
            dims[axis] = sliceLength(dim: dims[axis], start: starts[k], end: ends.dims[k], step: step)
        }
        return dims
    }

    static func sliceLength(dim: Dim, start: Int, end: Dim, step: Int) -> Dim {
        let huge = Int(Int32.max)
        if let n = dim.value, let e = end.value {
            var s = start < 0 ? start &+ n : start, t = e < 0 ? e &+ n : e
            if step > 0 {
                s = min(max(s, 0), n); t = min(max(t, 0), n)
            } else {
                s = min(max(s, 0), n - 1); t = min(max(t, -1), n - 1)
            }
            return .known(ShapeKernels.sliceCount(from: Int64(s), to: Int64(t), step: Int64(step)))
        }
        if step == 1 && start == 0 {
            if let e = end.value, e >= huge { return dim }
            if case .symbolic = end { return end }
        }
        return .unknown
    }

    static func rangeLength(_ node: Node, _ state: ShapeInferenceState) -> Dim {
        let start = state.shapeValue(node.input(0))?.dims.first
        let limit = state.shapeValue(node.input(1))?.dims.first
        let delta = state.shapeValue(node.input(2))?.dims.first
        if let s = start?.value, let l = limit?.value, let d = delta?.value, d != 0 {
            return .known(max(0, (l - s + d + (d > 0 ? -1 : 1)) / d))
        }
        if start == .known(0), delta == .known(1), let limit, case .symbolic = limit { return limit }
        return .unknown
    }
}
