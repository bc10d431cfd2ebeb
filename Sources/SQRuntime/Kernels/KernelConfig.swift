// Kernel settings shared by the GEMM wrappers: the ISA path, the thread count, errors and
// the fork/join helper. The kernels themselves are C (target SQKernels).
import Dispatch
import Foundation
import SQKernels
import Synchronization

/// The instruction-set path the C kernels run.
public enum KernelISA: String, Sendable, CaseIterable, Comparable {
    /// Portable scalar C (the reference every vector path must match).
    case scalar
    /// AVX2 + FMA.
    case avx2
    /// AVX-512 F/BW + VNNI.
    case avx512

    var cValue: sq_isa {
        switch self {
        case .scalar: return SQ_ISA_SCALAR
        case .avx2: return SQ_ISA_AVX2
        case .avx512: return SQ_ISA_AVX512
        }
    }

    init(_ value: sq_isa) {
        switch value {
        case SQ_ISA_AVX512: self = .avx512
        case SQ_ISA_AVX2: self = .avx2
        default: self = .scalar
        }
    }

    public static func < (lhs: KernelISA, rhs: KernelISA) -> Bool {
        lhs.cValue.rawValue < rhs.cValue.rawValue
    }

    /// The best path this CPU supports.
    public static var detected: KernelISA { KernelISA(sq_isa_detected()) }

    /// The path in use: `SQOPT_KERNEL=scalar|avx2|avx512` if set and supported, else
    /// `detected`, unless `force(_:)` changed it.
    public static var active: KernelISA { KernelISA(sq_isa_active()) }

    /// Every path this CPU can run, slowest first.
    public static var supported: [KernelISA] { allCases.filter { $0 <= detected } }

    /// Switch every kernel to `isa`. Returns false (and changes nothing) if the CPU lacks
    /// it. For tests and benchmarks: do not call while kernels run on other threads.
    @discardableResult
    public static func force(_ isa: KernelISA) -> Bool { sq_force_isa(isa.cValue) == 0 }
}

/// Errors of the kernel wrappers: a buffer or shape that does not fit the call.
public enum KernelError: Error, Equatable, CustomStringConvertible {
    /// A buffer is too small. `what` names the argument; `expected` (the minimum) and
    /// `actual` are element counts.
    case bufferSize(what: String, expected: Int, actual: Int)
    /// A negative dimension or another impossible argument.
    case invalidArgument(String)
    /// A kernel could not allocate its scratch memory.
    case outOfMemory

    public var description: String {
        switch self {
        case let .bufferSize(what, expected, actual):
            return "kernel argument '\(what)' has \(actual) elements, expected \(expected)"
        case let .invalidArgument(reason):
            return "invalid kernel argument: \(reason)"
        case .outOfMemory:
            return "a kernel could not allocate its scratch memory"
        }
    }
}

/// Thread settings of the kernels.
public enum KernelThreads {
    /// `SQOPT_THREADS` if it is a positive integer, else the active processor count.
    public static let defaultCount: Int = {
        if let text = ProcessInfo.processInfo.environment["SQOPT_THREADS"],
           let value = Int(text.trimmingCharacters(in: .whitespaces)), value > 0 {
            return value
        }
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }()
}

/// A bag of pointers that crosses into `concurrentPerform` workers. Each worker writes a
/// disjoint part of the output, so sharing is safe by construction.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// Collects failures (non-zero C status) of the pieces of one call.
final class KernelStatus: Sendable {
    private let failures = Atomic<Int>(0)

    /// Notes the return value of one C kernel call (0 = success).
    func record(_ status: Int32) {
        if status != 0 { failures.add(1, ordering: .relaxed) }
    }
    /// Throws `KernelError.outOfMemory` if any piece failed.
    func check() throws {
        if failures.load(ordering: .relaxed) != 0 { throw KernelError.outOfMemory }
    }
}

/// How one GEMM call is cut into independent pieces for threads.
struct GemmPartition {
    /// Pieces along columns (in whole panels) or rows.
    enum Axis { case panels, rows }
    let axis: Axis
    let pieces: Int
    let rows: Int
    let panels: Int

    /// - Parameters:
    ///   - operations: 2·m·n·k.
    ///   - minOperationsPerThread: below this a second thread costs more than it saves
    ///     (see `minSecondsPerThread`).
    ///   - weightBytes: size of the packed B. A B that fits a core's L2 cache (≤ 512 KiB)
    ///     is better shared and the rows split (each piece packs only its own rows of A);
    ///     a larger one is better split by panels (each core keeps half of it).
    ///   - streamedBytes: bytes of B one call must read (0: not counted). Products with few
    ///     rows (decode, m = 1) do little arithmetic per byte of B, so their time is the
    ///     time to stream B, not `operations` at the compute rate: they are split by panels
    ///     once each piece streams at least `minStreamedBytesPerThread`.
    ///   - minStreamedBytes: the threshold for `streamedBytes` (default
    ///     `minStreamedBytesPerThread`; infinite with `SQOPT_SPLIT_DECODE=0`).
    init(rows: Int, panels: Int, operations: Double, minOperationsPerThread: Double,
         threads: Int, weightBytes: Int = .max, streamedBytes: Int = 0,
         minStreamedBytes: Double = minStreamedBytesPerThread) {
        self.rows = rows
        self.panels = panels
        let byWork = Int(min(max(operations / minOperationsPerThread,
                                 Double(streamedBytes) / minStreamedBytes),
                             Double(Int.max / 2)))
        let wanted = max(1, min(threads, byWork))
        let rowsFirst = weightBytes <= 512 * 1024 && rows >= 64 * wanted
        if !rowsFirst && (panels >= 2 * wanted || panels >= rows) {
            axis = .panels
            pieces = max(1, min(wanted, panels))
        } else {
            axis = .rows
            pieces = max(1, min(wanted, rows))
        }
    }

    /// Half-open range of piece `index` along the axis (balanced, contiguous; rows are
    /// cut at multiples of 16 so micro-tiles stay full).
    func range(_ index: Int) -> Range<Int> {
        let total = axis == .panels ? panels : rows
        let unit = axis == .panels ? 1 : 16
        let units = (total + unit - 1) / unit
        let start = min(total, units * index / pieces * unit)
        let end = min(total, units * (index + 1) / pieces * unit)
        return start..<end
    }

    /// Piece `index` of `total` items cut evenly (used to split a batch of products).
    func batchRange(_ index: Int, of total: Int) -> Range<Int> {
        (total * index / pieces)..<(total * (index + 1) / pieces)
    }

    /// Run `body(index)` for every piece: inline for one piece, else on the spinning pool
    /// (or, when it is busy or disabled, on Dispatch workers).
    func run(_ body: @escaping @Sendable (Int) -> Void) {
        if pieces == 1 {
            body(0)
        } else if let pool = SpinPool.shared, pool.run(pieces: pieces, body) {
            return
        } else {
            DispatchQueue.concurrentPerform(iterations: pieces, execute: body)
        }
    }
}

/// The least work worth a second thread, in seconds: a hand-off to a spinning pool worker
/// costs ≈ 1 µs, waking a Dispatch worker ≈ 40–50 µs.
let minSecondsPerThread = SpinPool.shared != nil ? 20e-6 : 500e-6

/// The least packed B one thread should stream for a split of a product with few rows to
/// pay, ≈ 5 µs at the ≈ 50–80 GB/s a core reads B from L2/L3 (a hand-off to a spinning
/// worker costs ≈ 1 µs). SmolLM2's decode projections (m = 1; 576 × 1536 int8 is 0.9 MB)
/// then split in two; the 576 × 192 ones (0.1 MB) stay on the calling thread. Only with
/// the spinning pool: a Dispatch wake-up (≈ 40–50 µs) costs more than such a product.
///
/// On by default since the workers stay awake for a whole plan run (`SpinPool.keepAwake`)
/// and yield while they wait: before, each split product paid a wake-up and a whole decode
/// step gained nothing (docs/performance.md, 2026-12-03). `SQOPT_SPLIT_DECODE=0` turns it
/// off (infinite).
let minStreamedBytesPerThread: Double =
    SpinPool.shared != nil && ProcessInfo.processInfo.environment["SQOPT_SPLIT_DECODE"] != "0"
        ? 256 * 1024 : .infinity

/// Throws unless a buffer holds at least `expected` elements.
func checkCount(_ what: String, _ actual: Int, _ expected: Int) throws {
    if actual < expected {
        throw KernelError.bufferSize(what: what, expected: expected, actual: actual)
    }
}

/// Throws if any named dimension is negative.
func checkDimensions(_ dims: (String, Int)...) throws {
    for (name, value) in dims where value < 0 {
        throw KernelError.invalidArgument("\(name) = \(value) is negative")
    }
}
