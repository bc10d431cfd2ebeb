#if !SQOPT_LIBFUZZER
import Foundation

/// Normal (non-libFuzzer) build: replays the files given on the command line through the
/// same harness, so regression inputs and crash files can be checked without libFuzzer.
///
///     sqopt-fuzz FILE|DIR ...     one line per input: `ok`, or the clean error it gave
///
/// Exit 0 when every input was handled (success or a clean error); a crash is a crash.
@main
struct FuzzReplay {
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        guard !arguments.isEmpty, !arguments.contains("--help") else {
            print("usage: sqopt-fuzz FILE|DIR ...  (replay inputs through decode -> verify -> lower)")
            exit(arguments.isEmpty ? 2 : 0)
        }
        var replayed = 0
        for path in arguments {
            for file in inputFiles(path) {
                guard let data = FileManager.default.contents(atPath: file) else {
                    print("\(file): cannot read")
                    exit(1)
                }
                let folder = (file as NSString).deletingLastPathComponent
                let outcome = FuzzHarness.check([UInt8](data), fileName: file, modelDirectory: folder.isEmpty ? "." : folder)
                print("\(file): \(outcome)")
                replayed += 1
            }
        }
        print("replayed \(replayed) input(s), no crash")
    }

    /// `path` itself, or the files directly inside it (sorted; hidden and `.md` files skipped).
    static func inputFiles(_ path: String) -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            return [path]
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.filter { !$0.hasPrefix(".") && !$0.hasSuffix(".md") }.sorted().map { "\(path)/\($0)" }
    }
}
#endif
