import SQIR

/// Resolves `data_location = EXTERNAL` tensors of one model.
///
/// Rules (a model comes from anywhere; its data must stay inside its own folder):
/// - `location` is a relative path; absolute paths and any `..` component are refused;
/// - the path is resolved (symlinks included) and must stay inside the model's folder;
/// - the file must exist and be a regular file; `offset` and `length` are decimal, and
///   `offset + length` must lie within the file; `length`, when given, must equal the
///   tensor's dtype × dims size (without it, that many bytes are taken from `offset`);
/// - bytes are memory-mapped, never read here: a tensor borrows its range of the mapping.
///   When the range is not aligned to the element size it is copied to aligned memory.
final class ExternalDataResolver {
    private let file: String
    /// The model's folder with symlinks resolved; nil when decoding bytes without a file.
    private let modelDirectory: String?
    private var mappings: [String: MappedFile] = [:]

    init(file: String, modelDirectory: String?) {
        self.file = file
        self.modelDirectory = modelDirectory.flatMap(resolvedRealPath)
    }

    /// Storage for a tensor of `byteCount` bytes described by `entries` (key/value pairs).
    func storage(entries: [(key: String, value: String)], byteCount: Int, elementSize: Int,
                 location: String) throws -> TensorStorage {
        func refuse(_ reason: String) -> ONNXError {
            .externalData(file: file, location: location, reason: reason)
        }
        var path: String?
        var offset: Int?
        var length: Int?
        for (key, value) in entries {
            switch key {
            case "location": path = value
            case "offset":
                guard let parsed = Self.parseCount(value) else { throw refuse("offset '\(value)' is not a non-negative integer") }
                offset = parsed
            case "length":
                guard let parsed = Self.parseCount(value) else { throw refuse("length '\(value)' is not a non-negative integer") }
                length = parsed
            default:
                continue  // checksum, basepath: not needed to read the bytes
            }
        }
        guard let path, !path.isEmpty else { throw refuse("no 'location' entry") }
        let mapping = try map(path, refuse: refuse)
        let start = offset ?? 0
        if let length, length != byteCount {
            throw refuse("length \(length) does not match the \(byteCount) bytes the tensor's dtype and dims need")
        }
        let (end, overflow) = start.addingReportingOverflow(byteCount)
        guard !overflow, start <= mapping.size, end <= mapping.size else {
            throw refuse("bytes \(start)..<\(overflow ? "overflow" : String(end)) lie beyond the end of '\(path)' (\(mapping.size) bytes)")
        }
        guard byteCount > 0, let base = mapping.base else { return TensorStorage(byteCount: 0) }
        let pointer = base + start
        if Int(bitPattern: pointer) % max(elementSize, 1) != 0 {
            return TensorStorage(copying: UnsafeRawBufferPointer(start: pointer, count: byteCount))
        }
        return TensorStorage(borrowing: pointer, byteCount: byteCount,
                             owner: MappedRange(file: mapping, offset: start, count: byteCount))
    }

    /// Maps the file `path` names, after checking that it stays inside the model's folder.
    private func map(_ path: String, refuse: (String) -> ONNXError) throws -> MappedFile {
        guard let modelDirectory else {
            throw refuse("'\(path)': the model was not read from a file, so external data cannot be located")
        }
        guard !path.hasPrefix("/") else { throw refuse("absolute path '\(path)' refused; paths must be relative to the model's folder") }
        let components = path.split(separator: "/", omittingEmptySubsequences: true)
        guard !components.contains("..") else { throw refuse("path '\(path)' refused: '..' would leave the model's folder") }
        let joined = modelDirectory + "/" + path
        guard let real = resolvedRealPath(joined) else {
            throw refuse("file '\(path)' does not exist (looked for \(joined))")
        }
        let inside = modelDirectory == "/" ? real.hasPrefix("/") : real.hasPrefix(modelDirectory + "/")
        guard inside else { throw refuse("path '\(path)' refused: it resolves to \(real), outside the model's folder \(modelDirectory)") }
        if let existing = mappings[real] { return existing }
        do {
            let mapping = try MappedFile(path: real)
            mappings[real] = mapping
            return mapping
        } catch {
            throw refuse("cannot map '\(path)': \(error)")
        }
    }

    /// A decimal count: digits only, no sign, fits in Int.
    static func parseCount(_ text: String) -> Int? {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        return Int(text)
    }
}
