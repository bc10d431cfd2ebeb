import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole file memory-mapped read-only (`MAP_PRIVATE`). Mapping reads nothing: pages are
/// loaded when first touched, so tensors borrowed from the mapping cost no I/O until used.
///
/// The mapping lives as long as the object; tensors keep it alive as their storage owner.
final class MappedFile: @unchecked Sendable {
    /// Start of the mapping; nil for an empty file.
    let base: UnsafeRawPointer?
    let size: Int
    /// The path the file was opened with.
    let path: String
    /// Device and inode of the mapped file (to recognise the same file under another name).
    let identity: FileIdentity
    /// Bytes `dropPages` has given back so far (for tests and diagnostics).
    let droppedBytes = Atomic<Int>(0)

    /// Maps `path`. With `populate` the pages are read in up front (for a file that will be
    /// read whole right away; much cheaper than faulting them in one by one). Throws
    /// `SystemError` (errno text) when it cannot be opened or mapped.
    init(path: String, populate: Bool = false) throws(SystemError) {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SystemError.lastErrno("open") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw SystemError.lastErrno("stat") }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw SystemError(message: "not a regular file") }
        identity = FileIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
        size = Int(info.st_size)
        if size == 0 {
            base = nil
            return
        }
        #if os(Linux)
        let flags = MAP_PRIVATE | (populate ? MAP_POPULATE : 0)
        #else
        let flags = MAP_PRIVATE
        #endif
        let address = mmap(nil, size, PROT_READ, flags, fd, 0)
        guard let address, address != MAP_FAILED else { throw SystemError.lastErrno("mmap") }
        base = UnsafeRawPointer(address)
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), size) }
    }

    /// The mapped bytes (empty for an empty file). Valid while `self` lives.
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: size) }

    /// Drops the whole pages inside `offset ..< offset + count` from the process's memory
    /// (`madvise(MADV_DONTNEED)`); pages shared with the bytes around the range stay. The
    /// mapping is read-only, so nothing is lost: a page touched again is read from the
    /// file again. Returns the number of bytes dropped.
    @discardableResult
    func dropPages(offset: Int, count: Int) -> Int {
        guard let base, count > 0, offset >= 0, offset <= size - count else { return 0 }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (offset + page - 1) / page * page, end = (offset + count) / page * page
        guard end > start, madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, MADV_DONTNEED) == 0 else {
            return 0
        }
        droppedBytes.add(end - start, ordering: .relaxed)
        return end - start
    }
}

/// One tensor's range of a `MappedFile`: the owner of the tensor's borrowed storage. When
/// the last tensor using it is gone (a pass replaced the weight), its pages are dropped
/// (`MappedFile.dropPages`), so a pipeline that rewrites every weight (smooth, quantize)
/// does not hold the input's pages and the new weights at once: resident memory stays near
/// one copy of the weights instead of the input plus every rewritten weight.
final class MappedRange: @unchecked Sendable {
    let file: MappedFile
    let offset: Int
    let count: Int

    init(file: MappedFile, offset: Int, count: Int) {
        self.file = file
        self.offset = offset
        self.count = count
    }

    deinit { file.dropPages(offset: offset, count: count) }
}

/// Device + inode: two paths name the same file exactly when these agree.
struct FileIdentity: Hashable, Sendable {
    var device: UInt64
    var inode: UInt64

    /// The identity of the file at `path` (following symlinks), or nil when it does not exist.
    static func of(_ path: String) -> FileIdentity? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return FileIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }
}

/// A failed system call, as text (`open: No such file or directory`).
struct SystemError: Error, CustomStringConvertible, Sendable {
    var message: String
    var description: String { message }

    static func lastErrno(_ call: String) -> SystemError {
        SystemError(message: "\(call): \(errnoText(errno))")
    }
}

/// The C library's text for an errno value.
func errnoText(_ code: Int32) -> String {
    guard let text = strerror(code) else { return "error \(code)" }
    return String(cString: text)
}

/// Resolves `path` to an absolute path without symlinks (nil when it does not exist).
func resolvedRealPath(_ path: String) -> String? {
    guard let resolved = realpath(path, nil) else { return nil }
    defer { free(resolved) }
    return String(cString: resolved)
}
