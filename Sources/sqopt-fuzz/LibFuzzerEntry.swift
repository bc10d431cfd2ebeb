/// The libFuzzer entry point. libFuzzer calls it once per generated input; returning 0
/// means "input handled". Any crash, trap or sanitizer report inside is a bug in sqopt.
///
/// Built with `-sanitize=fuzzer` (tools/fuzz.sh) libFuzzer supplies `main`; in the normal
/// build `Replay.swift` supplies `main` and this symbol is simply unused.
@_cdecl("LLVMFuzzerTestOneInput")
public func sqoptFuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size)
    _ = FuzzHarness.check(Array(bytes))
    return 0
}
