import SQIR

/// Einsum, as older exports of rotary embeddings (`torch.einsum("i,j->ij", t, inv_freq)`) and
/// some attention implementations (`"bhqd,bhkd->bhqk"`) write it: explicit (`->`) and
/// implicit outputs, `...` (broadcast numpy-style, aligned right), repeated labels in one
/// operand (diagonals), any number of operands. A direct loop over every label's range,
/// accumulating in float64: meant for the small products exporters leave as Einsum, not as a
/// GEMM path. Float types (float16/bfloat16 via float32) and integers.
struct EinsumKernel: OpKernel {
    /// Operand and output labels; letters are 0..<52, ellipsis dims 64 + k (k counted from the
    /// first ellipsis dim of the widest operand).
    let operands: [[Int]]
    let ellipsisRanks: [Int]
    let output: [Int]?
    let outputHasEllipsis: Bool
    /// Products of every label's range beyond this are refused (the loop is not a GEMM).
    static let maxIterations = 1 << 28

    init(equation: String) throws {
        let text = equation.filter { !$0.isWhitespace }
        let sides = text.components(separatedBy: "->")
        guard sides.count <= 2 else { throw OpError("einsum equation '\(equation)' has more than one '->'") }
        var terms: [[Int]] = [], ellipsis: [Int] = []
        for term in sides[0].components(separatedBy: ",") {
            let (labels, hasEllipsis) = try Self.parse(term, equation)
            terms.append(labels)
            ellipsis.append(hasEllipsis ? 1 : 0)
        }
        operands = terms
        ellipsisRanks = ellipsis
        if sides.count == 2 {
            let (labels, hasEllipsis) = try Self.parse(sides[1], equation)
            guard labels.count == Set(labels).count else { throw OpError("einsum output '\(sides[1])' repeats a label") }
            let known = Set(terms.joined())
            if let stray = labels.first(where: { $0 >= 0 && !known.contains($0) }) {
                throw OpError("einsum output label \(Self.letter(stray)) does not appear in any operand")
            }
            output = labels
            outputHasEllipsis = hasEllipsis
        } else {
            output = nil
            outputHasEllipsis = true
        }
    }

    /// Letters as 0..<52; the ellipsis as -1 (expanded per operand at run time).
    private static func parse(_ term: String, _ equation: String) throws -> ([Int], Bool) {
        var labels: [Int] = []
        var hasEllipsis = false
        var chars = Array(term)[...]
        while let c = chars.first {
            if c == "." {
                guard chars.starts(with: [".", ".", "."]), !hasEllipsis else { throw OpError("einsum equation '\(equation)': bad ellipsis") }
                hasEllipsis = true
                labels.append(-1)
                chars = chars.dropFirst(3)
                continue
            }
            guard let ascii = c.asciiValue, c.isLetter else { throw OpError("einsum equation '\(equation)': bad character '\(c)'") }
            labels.append(ascii >= 97 ? Int(ascii - 97) + 26 : Int(ascii - 65))
            chars = chars.dropFirst()
        }
        return (labels, hasEllipsis)
    }

    private static func letter(_ label: Int) -> String {
        guard label >= 0 && label < 52 else { return "..." }
        return String(UnicodeScalar(UInt8(label < 26 ? 65 + label : 97 + label - 26)))
    }

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        guard inputs.count == operands.count else { throw OpError("einsum equation has \(operands.count) operand(s), got \(inputs.count) input(s)") }
        let tensors = try inputs.indices.map { try required(inputs, $0) }
        guard let dtype = tensors.first?.dtype, tensors.allSatisfy({ $0.dtype == dtype }) else { throw OpError("einsum inputs must share one element type") }
        guard dtype != .bool, dtype != .string else { throw OpError.unsupportedType(dtype) }

        // Expand each ellipsis to labels 64 + k, aligned right across operands.
        var expanded: [[Int]] = []
        var ellipsisDims: [Int] = []
        let ellipsisWidth = try zip(operands, tensors).map { labels, t -> Int in
            let letters = labels.filter { $0 >= 0 }.count
            guard labels.contains(-1) ? t.rank >= letters : t.rank == letters else {
                throw OpError("einsum operand of shape \(t.shape) does not match its \(letters) label(s)")
            }
            return t.rank - letters
        }.max() ?? 0
        ellipsisDims = [Int](repeating: 1, count: ellipsisWidth)
        for (labels, t) in zip(operands, tensors) {
            let width = t.rank - labels.filter { $0 >= 0 }.count
            var row: [Int] = []
            for l in labels {
                if l == -1 { row += (0..<width).map { 64 + ellipsisWidth - width + $0 } } else { row.append(l) }
            }
            for (axis, l) in row.enumerated() where l >= 64 {
                let k = l - 64, d = t.shape[axis]
                if ellipsisDims[k] == 1 { ellipsisDims[k] = d } else if d != 1 && d != ellipsisDims[k] {
                    throw OpError("einsum ellipsis dims of \(t.shape) do not broadcast")
                }
            }
            expanded.append(row)
        }
        var size: [Int: Int] = [:]
        for (row, t) in zip(expanded, tensors) {
            for (axis, l) in row.enumerated() where l < 64 {
                if let d = size[l], d != t.shape[axis] {
                    throw OpError("einsum label \(Self.letter(l)) is \(d) in one operand and \(t.shape[axis]) in another")
                }
                size[l] = t.shape[axis]
            }
        }
        for k in 0..<ellipsisWidth { size[64 + k] = ellipsisDims[k] }

        let ellipsisLabels = (0..<ellipsisWidth).map { 64 + $0 }
        let outLabels: [Int]
        if let output {
            outLabels = output.flatMap { $0 == -1 ? ellipsisLabels : [$0] }
            if !outputHasEllipsis && ellipsisWidth > 0 && ellipsisDims.contains(where: { $0 != 1 }) {
                throw OpError("einsum output drops the ellipsis dims")
            }
        } else {
            var count: [Int: Int] = [:]
            for l in expanded.joined() where l < 64 { count[l, default: 0] += 1 }
            outLabels = ellipsisLabels + count.filter { $0.value == 1 }.keys.sorted()
        }
        let contracted = Set(size.keys).subtracting(outLabels).sorted()
        let loopLabels = outLabels + contracted
        let dims = loopLabels.map { size[$0] ?? 1 }
        let outShape = outLabels.map { size[$0] ?? 1 }
        guard let outCount = checkedElementCount(outShape), outCount <= pool.maxTensorBytes / 8,
              let loopCount = checkedElementCount(dims), loopCount <= Self.maxIterations else {
            throw OpError("einsum iteration space \(dims) is too large for the direct loop (limit \(Self.maxIterations) steps)")
        }

        // Per operand, the stride each loop label moves it by (0 for broadcast dims).
        let position = Dictionary(uniqueKeysWithValues: loopLabels.enumerated().map { ($1, $0) })
        var strides = [[Int]](repeating: [Int](repeating: 0, count: loopLabels.count), count: tensors.count)
        for (i, (row, t)) in zip(expanded, tensors).enumerated() {
            let s = contiguousStrides(t.shape)
            for (axis, l) in row.enumerated() where t.shape[axis] != 1 || (size[l] ?? 1) == 1 {
                if let p = position[l] { strides[i][p] += s[axis] }
            }
        }
        let values = try tensors.map { try $0.numericValues() }
        var accumulated = [Double](repeating: 0, count: outCount)
        let contractedCount = contracted.reduce(1) { $0 * (size[$1] ?? 1) }
        var index = [Int](repeating: 0, count: loopLabels.count)
        var offsets = [Int](repeating: 0, count: tensors.count)
        for step in 0..<loopCount {
            var product = 1.0
            for i in 0..<tensors.count { product *= values[i][offsets[i]] }
            accumulated[step / Swift.max(contractedCount, 1)] += product
            var d = loopLabels.count - 1
            while d >= 0 {
                index[d] += 1
                for i in 0..<tensors.count { offsets[i] += strides[i][d] }
                if index[d] < dims[d] { break }
                for i in 0..<tensors.count { offsets[i] -= strides[i][d] * dims[d] }
                index[d] = 0
                d -= 1
            }
        }
        let result = try computingHalfInFloat([tensors[0]], pool) { widened in
            guard let t = widened[0] else { return [nil] }
            return [try FromDoubles(values: accumulated, shape: outShape, dtype: t.dtype, pool: pool).dispatch(t.dtype)]
        }
        guard let out = result.first ?? nil else { throw OpError("internal: einsum produced no tensor") }
        return [out]
    }
}

private struct FromDoubles: NumericComputation {
    let values: [Double], shape: [Int], dtype: DType, pool: BufferPool

    func run<T: RuntimeNumber>(_ type: T.Type) throws -> Tensor {
        try pool.make(T.self, dtype: dtype, shape: shape) { out in
            for i in 0..<values.count { out[i] = T(double: values[i]) }
        }
    }
}
