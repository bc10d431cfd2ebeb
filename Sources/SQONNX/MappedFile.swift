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
