import SQIR

/// Finds `DQ(Q(x)) x DQ(W)` patterns around MatMul/Gemm that run as one int8 kernel.
/// (Placeholder until the int8 GEMM API lands: matches nothing, so every node runs on
/// the float reference path.)
struct Int8Lowering {
    /// Nodes whose work the fused kernels do (skipped by the plan).
    private(set) var absorbed: Set<ObjectIdentifier> = []

    init(graph: Graph, live: Set<ObjectIdentifier>) {}

    func fusion(for node: Node) -> (any OpKernel)? { nil }
}
