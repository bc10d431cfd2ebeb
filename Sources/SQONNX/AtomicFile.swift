#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a file so that `destination` is either left as it was or replaced whole.
///
/// Bytes go to a file in the destination's folder that has no name yet (Linux `O_TMPFILE`),
/// so an interrupted write — even `kill -9` — leaves nothing behind. `commit()` fsyncs it,
/// links it under a temporary name and renames that over `destination` (atomic on POSIX),
/// then fsyncs the folder. Where `O_TMPFILE` is unavailable a named temporary file
/// (`.NAME.sqopt-tmp-XXXXXX`) is used instead and removed on every error path.
/// A writer dropped without `commit()` discards everything it wrote.
final class AtomicFileWriter {
    let destination: String
    private let folder: String
    private var descriptor: Int32
    /// The temporary's name when it has one (the mkstemp fallback).
    private var temporaryPath: String?
    private var committed = false

    /// Opens the temporary for `destination`; `preferUnnamed: false` forces the named
    /// temporary file (tests use it to check the fallback's clean-up).
    init(destination: String, preferUnnamed: Bool = true) throws(SystemError) {
        self.destination = destination
        folder = ONNXDecoder.directory(of: destination)
        #if os(Linux)
        if preferUnnamed && access("/proc/self/fd", X_OK) == 0 {
            let fd = open(folder, O_WRONLY | O_CLOEXEC | O_DIRECTORY | 0o20_000_000 /* __O_TMPFILE */, 0o644)
            if fd >= 0 {
                descriptor = fd
                return
            }
        }
        #endif
        var template = Array((folder + "/." + Self.baseName(destination) + ".sqopt-tmp-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { buffer -> Int32 in
            guard let base = buffer.baseAddress else { return -1 }
            return mkstemp(base)
        }
        guard fd >= 0 else { throw SystemError.lastErrno("create a temporary file in \(folder)") }
        descriptor = fd
        temporaryPath = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
        _ = fchmod(fd, 0o644)
    }

    deinit {
        if descriptor >= 0 { close(descriptor) }
        if !committed, let temporaryPath { unlink(temporaryPath) }
    }

    /// Appends all of `bytes` (retrying short writes and EINTR).
    func write(_ bytes: UnsafeRawBufferPointer) throws(SystemError) {
        guard var pointer = bytes.baseAddress else { return }
        var left = bytes.count
        while left > 0 {
            let written = systemWrite(descriptor, pointer, min(left, 1 << 30))
            if written < 0 {
                if errno == EINTR { continue }
                throw SystemError.lastErrno("write \(destination)")
            }
            pointer += written
            left -= written
        }
    }

    /// Appends all of `bytes`.
    func write(_ bytes: [UInt8]) throws(SystemError) {
        let result: Result<Void, SystemError> = bytes.withUnsafeBytes { raw in
            do throws(SystemError) {
                try write(raw)
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        try result.get()
    }

    /// Makes the written bytes the content of `destination`.
    func commit() throws(SystemError) {
        guard fsync(descriptor) == 0 else { throw SystemError.lastErrno("fsync \(destination)") }
        if temporaryPath == nil {
            let name = folder + "/." + Self.baseName(destination) + ".sqopt-tmp-\(getpid())-\(UInt32.random(in: 0 ... .max))"
            guard linkat(AT_FDCWD, "/proc/self/fd/\(descriptor)", AT_FDCWD, name, AT_SYMLINK_FOLLOW) == 0 else {
                throw SystemError.lastErrno("link the new \(destination)")
            }
            temporaryPath = name
        }
        guard let temporaryPath else { return }
        guard rename(temporaryPath, destination) == 0 else {
            throw SystemError.lastErrno("rename onto \(destination)")
        }
        committed = true
        close(descriptor)
        descriptor = -1
        let folderDescriptor = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if folderDescriptor >= 0 {
            _ = fsync(folderDescriptor)
            close(folderDescriptor)
        }
    }

    static func baseName(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }
}

#if canImport(Glibc)
private let systemWrite = Glibc.write
#elseif canImport(Darwin)
private let systemWrite = Darwin.write
#endif

/// A buffered byte sink over an `AtomicFileWriter`; remembers the first write error.
final class FileSink {
    let writer: AtomicFileWriter
    private let buffer: UnsafeMutableRawPointer
    private let capacity = 1 << 20
    private var used = 0
    private(set) var error: SystemError?
    /// Bytes appended so far.
    private(set) var count = 0

    init(writer: AtomicFileWriter) {
        self.writer = writer
        buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 64)
    }

    deinit { buffer.deallocate() }

    func append(_ bytes: UnsafeRawBufferPointer) {
        count += bytes.count
        guard error == nil, let source = bytes.baseAddress, bytes.count > 0 else { return }
        if used + bytes.count > capacity { flush() }
        if bytes.count >= capacity {
            do { try writer.write(bytes) } catch { self.error = error }
        } else {
            (buffer + used).copyMemory(from: source, byteCount: bytes.count)
            used += bytes.count
        }
    }

    /// Appends `count` zero bytes (padding).
    func appendZeros(_ count: Int) {
        let zeros = [UInt8](repeating: 0, count: count)
        zeros.withUnsafeBytes { append($0) }
    }

    func flush() {
        guard used > 0, error == nil else { return }
        do { try writer.write(UnsafeRawBufferPointer(start: buffer, count: used)) } catch { self.error = error }
        used = 0
    }

    /// Flushes and commits; throws the first error seen.
    func commit() throws(SystemError) {
        flush()
        if let error { throw error }
        try writer.commit()
    }
}
