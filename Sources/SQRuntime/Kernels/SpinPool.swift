// A tiny fork/join pool whose workers spin for a while before sleeping, so that GEMMs of
// a few tens of microseconds can still use every core. Waking a Dispatch worker costs
// ≈ 40–50 µs on these machines; handing a job to a spinning worker costs ≈ 1 µs.
//
// One job at a time: a caller that finds the pool busy (another thread's job, or a call
// from inside a job) falls back to DispatchQueue.concurrentPerform. Pieces are claimed
// from a shared counter, so any participant may run any piece; pieces are independent,
// so the result does not depend on who ran what.
import Dispatch
import Foundation
import SQKernels
import Synchronization

final class SpinPool: @unchecked Sendable {
    /// The process-wide pool: `KernelThreads.defaultCount − 1` workers, started on first
    /// use. Nil when `SQOPT_THREAD_POOL=dispatch` or there is a single core.
    static let shared: SpinPool? = {
        let mode = ProcessInfo.processInfo.environment["SQOPT_THREAD_POOL"]
        if mode == "dispatch" || KernelThreads.defaultCount < 2 { return nil }
        return SpinPool(workers: KernelThreads.defaultCount - 1)
    }()

    /// How long an idle worker spins before it sleeps on its semaphore: 200 µs, or
    /// `SQOPT_SPIN_MICROSECONDS` (for measuring; a decode step has gaps of ≈ 100–300 µs
    /// between its split products).
    static let spinNanoseconds: UInt64 = {
        if let text = ProcessInfo.processInfo.environment["SQOPT_SPIN_MICROSECONDS"],
           let value = UInt64(text), value > 0 {
            return value * 1000
        }
        return 200_000
    }()

    /// Whether `keepAwake` keeps the workers spinning for a whole plan run: on unless
    /// `SQOPT_SPIN_DURING_RUN=0` (for measuring).
    static let spinDuringRun: Bool = ProcessInfo.processInfo.environment["SQOPT_SPIN_DURING_RUN"] != "0"

    private let workerCount: Int
    /// Callers inside `keepAwake` (plan runs in progress): while it is positive, idle
    /// workers keep spinning past `spinNanoseconds` instead of sleeping.
    private let awakeRequests = Atomic<Int>(0)
    /// Bumped after a job is published; workers wait for it to change.
    private let generation = Atomic<Int>(0)
    private let nextPiece = Atomic<Int>(0)
    private let finishedPieces = Atomic<Int>(0)
    /// Owned by the one submitter whose job runs.
    private let busy = Atomic<Bool>(false)
    /// True while the job fields below may be read; workers register in `activeWorkers`
    /// first, so the submitter can wait until no one reads before it clears them.
    private let jobOpen = Atomic<Bool>(false)
    private let activeWorkers = Atomic<Int>(0)
    private let slots: [WorkerSlot]

    /// Per worker: `sleeping` is true while it sleeps (or is about to) on `wakeup`.
    private final class WorkerSlot: Sendable {
        let sleeping = Atomic<Bool>(false)
        let wakeup = DispatchSemaphore(value: 0)
    }

    // The current job: written only while jobOpen is false and no worker is active,
    // read only by registered workers that saw jobOpen true.
    private var jobPieces = 0
    private var jobBody: (@Sendable (Int) -> Void)?

    private init(workers: Int) {
        workerCount = workers
        slots = (0..<workers).map { _ in WorkerSlot() }
        for index in 0..<workers {
            let thread = Thread { [self] in self.workerLoop(index) }
            thread.name = "sqopt-kernel-\(index + 1)"
            thread.start()
        }
    }

    /// Runs `body` with the workers kept awake: an idle worker spins (instead of falling
    /// asleep after `spinNanoseconds`) until `body` returns, and sleeping workers are woken
    /// now. A decode step runs its split products 100–300 µs apart; without this each of
    /// them paid a wake-up (≈ 40–50 µs, ≈ 30 context switches per SmolLM2 token) and the
    /// split saved nothing. The workers go back to sleep `spinNanoseconds` after the last
    /// caller leaves. Nested and concurrent callers are counted.
    func keepAwake<R>(_ body: () throws -> R) rethrows -> R {
        guard SpinPool.spinDuringRun else { return try body() }
        if awakeRequests.add(1, ordering: .sequentiallyConsistent).oldValue == 0 {
            for slot in slots where slot.sleeping.exchange(false, ordering: .sequentiallyConsistent) {
                slot.wakeup.signal()
            }
        }
        defer { awakeRequests.subtract(1, ordering: .sequentiallyConsistent) }
        return try body()
    }

    /// Runs `body(0..<pieces)` on the caller and the workers; returns when all are done.
    /// Returns false without running anything if the pool is busy.
    func run(pieces: Int, _ body: @escaping @Sendable (Int) -> Void) -> Bool {
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            return false
        }
        jobPieces = pieces
        jobBody = body
        nextPiece.store(0, ordering: .relaxed)
        finishedPieces.store(0, ordering: .relaxed)
        jobOpen.store(true, ordering: .sequentiallyConsistent)
        generation.add(1, ordering: .sequentiallyConsistent)
        for slot in slots where slot.sleeping.exchange(false, ordering: .sequentiallyConsistent) {
            slot.wakeup.signal()
        }
        work(pieces: pieces, body: body)
        var spins = 0
        while finishedPieces.load(ordering: .acquiring) < pieces { backOff(&spins) }
        // Close the job; wait until no worker still looks at its fields.
        jobOpen.store(false, ordering: .sequentiallyConsistent)
        while activeWorkers.load(ordering: .sequentiallyConsistent) > 0 { backOff(&spins) }
        jobBody = nil
        busy.store(false, ordering: .releasing)
        return true
    }

    /// Spin briefly, then yield the core: on an oversubscribed machine the thread we wait
    /// for may need it.
    private func backOff(_ spins: inout Int) {
        spins += 1
        if spins < 2000 { sq_spin_pause() } else { sched_yield() }
    }

    /// Claim and run pieces until none is left.
    private func work(pieces: Int, body: @Sendable (Int) -> Void) {
        while true {
            let piece = nextPiece.add(1, ordering: .relaxed).oldValue
            if piece >= pieces { return }
            body(piece)
            finishedPieces.add(1, ordering: .releasing)
        }
    }

    private func workerLoop(_ index: Int) {
        var seen = generation.load(ordering: .acquiring)
        while true {
            waitForJob(index, after: seen)
            seen = generation.load(ordering: .acquiring)
            activeWorkers.add(1, ordering: .sequentiallyConsistent)
            if jobOpen.load(ordering: .sequentiallyConsistent), let body = jobBody {
                work(pieces: jobPieces, body: body)
            }
            activeWorkers.subtract(1, ordering: .sequentiallyConsistent)
        }
    }

    /// Spin until the generation moves past `seen`; `spinNanoseconds` after the last
    /// `keepAwake` caller left (or the wait began), sleep. Returns early when `keepAwake`
    /// wakes a sleeping worker (the caller checks for a job and waits again).
    private func waitForJob(_ index: Int, after seen: Int) {
        var deadline = DispatchTime.now().uptimeNanoseconds + SpinPool.spinNanoseconds
        var spins = 0
        while generation.load(ordering: .acquiring) == seen {
            sq_spin_pause()
            spins += 1
            if spins & 255 == 0 && awakeRequests.load(ordering: .relaxed) > 0 {
                // Kept awake for a run: offer the core to other runnable threads every few
                // microseconds (a no-op on an idle core), so that on a busy machine the
                // spinning worker does not take time slices from the thread running the plan
                // or from other processes; then a job finds it asleep-in-place and the
                // caller runs the pieces itself.
                sched_yield()
                deadline = DispatchTime.now().uptimeNanoseconds + SpinPool.spinNanoseconds
                continue
            }
            if spins & 255 == 0 && DispatchTime.now().uptimeNanoseconds > deadline {
                let slot = slots[index]
                slot.sleeping.store(true, ordering: .sequentiallyConsistent)
                if generation.load(ordering: .sequentiallyConsistent) != seen
                    || awakeRequests.load(ordering: .sequentiallyConsistent) > 0 {
                    // A job (or a `keepAwake` caller) arrived meanwhile. If it already
                    // cleared our flag it also signalled: consume that signal to keep the
                    // count balanced.
                    if !slot.sleeping.exchange(false, ordering: .sequentiallyConsistent) {
                        slot.wakeup.wait()
                    }
                    return
                }
                slot.wakeup.wait()
                return
            }
        }
    }
}
