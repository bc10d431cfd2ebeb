import SQIR

/// A failure inside a kernel or a kernel factory. The plan wraps it into an `IRError`
/// that names the node, so kernels never need to know which node they belong to.
struct OpError: Error, CustomStringConvertible {
    var reason: String
    init(_ reason: String) { self.reason = reason }
    var description: String { reason }

    static func unsupportedType(_ dtype: DType, _ what: String = "input") -> OpError {
        OpError("unsupported \(what) element type \(dtype)")
    }
}

/// Wraps any error thrown while lowering or running a node into an `IRError` naming it.
func located(_ error: Error, at location: String) -> IRError {
    if var ir = error as? IRError {
        if ir.location == nil { ir.location = location }
        return ir
    }
    if let k = error as? OpError { return IRError(location: location, reason: k.reason) }
    return IRError(location: location, reason: String(describing: error))
}
