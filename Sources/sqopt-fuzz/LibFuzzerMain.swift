#if SQOPT_LIBFUZZER
import Foundation

/// libFuzzer's driver, entered explicitly: SwiftPM renames an executable's entry point (and
/// links `main` to it), so libFuzzer's own `main` cannot be used; `@main` below hands the
/// command line to `LLVMFuzzerRunDriver` instead (libFuzzer's documented embedding API).
@_extern(c, "LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

@main
struct LibFuzzerMain {
    static func main() {
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, sqoptFuzzTestOneInput))
    }
}
#endif
