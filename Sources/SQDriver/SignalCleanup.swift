import Dispatch
import Foundation
import Synchronization

/// Ctrl-C (SIGINT) and SIGTERM handling for the CLI: a clean, non-zero exit with a message,
/// and no partial output left behind.
///
/// Call `install()` once at startup (before any long work). From then on SIGINT and
/// SIGTERM no longer kill the process mid-instruction; instead a dispatch queue (not a
/// signal-handler context, so ordinary Swift is safe there):
/// 1. removes every path registered with `register(_:)` (temporary outputs),
/// 2. prints `<tool>: interrupted by SIGINT; unfinished output discarded` to stderr,
/// 3. ends the process with `_exit(130)` (SIGINT) or `_exit(143)` (SIGTERM), the shell
///    convention 128 + signal, without running atexit handlers while other threads work.
///
/// ```swift
/// SignalCleanup.install(toolName: "sqopt")
/// SignalCleanup.register(temporaryPath)      // before creating a named temporary file
/// defer { SignalCleanup.unregister(temporaryPath) }  // after rename or removal
/// ```
///
/// SQONNX's atomic writer uses an unnamed `O_TMPFILE` on Linux, which the kernel discards
/// when the process ends, so for it `install()` alone is enough; `register` is for named
/// temporaries (the writer's mkstemp fallback, calibration scratch files, ...).
public enum SignalCleanup {
    private struct State {
        var toolName = "sqopt"
        var paths: Set<String> = []
        var sources: [any DispatchSourceSignal] = []
    }

    private static let state = Mutex(State())
    private static let queue = DispatchQueue(label: "sqopt.signal-cleanup")

    /// Installs the SIGINT and SIGTERM handlers (idempotent). Signals ignored when the process
    /// started stay ignored.
    public static func install(toolName: String = "sqopt") {
        state.withLock { state in
            state.toolName = toolName
            guard state.sources.isEmpty else { return }
            for signalNumber in [SIGINT, SIGTERM] {
                // The dispatch source sees the signal; the default action must not. A signal
                // already ignored at startup (`nohup`, a background job) stays ignored.
                let previous = signal(signalNumber, SIG_IGN)
                // SIG_IGN is the handler value 1 on Linux and Darwin (function pointers are not Equatable).
                if let previous, unsafeBitCast(previous, to: Int.self) == 1 { continue }
                let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: queue)
                source.setEventHandler { handle(signalNumber) }
                source.resume()
                state.sources.append(source)
            }
        }
    }

    /// Removes `path` if the process is interrupted before `unregister(path)`.
    public static func register(_ path: String) {
        state.withLock { _ = $0.paths.insert(path) }
    }

    /// Forgets `path` (it was renamed into place or already removed).
    public static func unregister(_ path: String) {
        state.withLock { _ = $0.paths.remove(path) }
    }

    /// The paths that would be removed now (for tests).
    public static var registeredPaths: Set<String> {
        state.withLock { $0.paths }
    }

    private static func handle(_ signalNumber: Int32) -> Never {
        let (toolName, paths) = state.withLock { ($0.toolName, $0.paths) }
        for path in paths { unlink(path) }
        let name = signalNumber == SIGINT ? "SIGINT" : "SIGTERM"
        let message = "\(toolName): interrupted by \(name); unfinished output discarded\n"
        FileHandle.standardError.write(Data(message.utf8))
        _exit(128 + signalNumber)
    }
}
