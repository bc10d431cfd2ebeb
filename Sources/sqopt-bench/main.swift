// sqopt-bench: micro-benchmarks of sqopt's kernels.
//
//   sqopt-bench gemm [--json] [--threads 1,2] [--shapes 256,768,1024,512x768x3072,1x576x1536]
//                    [--kernels fp32,int8,int8-linear] [--min-time 0.3] [--isa avx512]
//
// Prints the median time of each (shape, threads, kernel) and GFLOPS / GOPS (2·m·n·k per
// product). tools/bench_gemm.py runs this next to onnxruntime and prints the ratios.
import Foundation
import SQRuntime

let usage = """
    usage: sqopt-bench gemm [--json] [--threads LIST] [--shapes LIST] [--kernels LIST]
                            [--min-time SECONDS] [--isa scalar|avx2|avx512]
      --threads   thread counts, comma separated (default 1,2)
      --shapes    M x K x N shapes, comma separated; a single number means a cube
                  (default 256,768,1024,512x768x3072,1x576x1536)
      --kernels   fp32, int8 (s8 x s8 GEMM with per-token x per-channel epilogue),
                  int8-linear (int8 plus per-token quantization of the float input)
                  (default fp32,int8,int8-linear)
      --min-time  seconds of timed runs per measurement, at least 5 runs (default 0.3)
      --isa       force a kernel path (default: the best the CPU has)
      --json      one JSON document instead of the table
    """

struct UsageError: Error, CustomStringConvertible {
    let description: String
}

func parseList<T>(_ text: String, _ what: String, _ parse: (String) -> T?) throws -> [T] {
    let items = text.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
    let values = items.compactMap(parse)
    if values.count != items.count || values.isEmpty {
        throw UsageError(description: "invalid \(what) list '\(text)'")
    }
    return values
}

func parseShape(_ text: String) -> GemmShape? {
    let parts = text.lowercased().split(separator: "x").compactMap { Int($0) }
    if parts.count == 1, parts[0] > 0 { return GemmShape(m: parts[0], k: parts[0], n: parts[0]) }
    if parts.count == 3, parts.allSatisfy({ $0 > 0 }) {
        return GemmShape(m: parts[0], k: parts[1], n: parts[2])
    }
    return nil
}

func parseGemmOptions(_ args: [String]) throws -> GemmBenchOptions {
    var options = GemmBenchOptions()
    var index = 0
    func value() throws -> String {
        index += 1
        guard index < args.count else { throw UsageError(description: "\(args[index - 1]) needs a value") }
        return args[index]
    }
    while index < args.count {
        switch args[index] {
        case "--json": options.json = true
        case "--threads": options.threads = try parseList(try value(), "thread") { Int($0).flatMap { $0 > 0 ? $0 : nil } }
        case "--shapes": options.shapes = try parseList(try value(), "shape", parseShape)
        case "--kernels": options.kernels = try parseList(try value(), "kernel") { GemmKernel(rawValue: $0) }
        case "--min-time":
            guard let seconds = Double(try value()), seconds > 0 else {
                throw UsageError(description: "--min-time needs a positive number")
            }
            options.minTime = seconds
        case "--isa":
            let name = try value()
            guard let isa = KernelISA(rawValue: name) else {
                throw UsageError(description: "unknown ISA '\(name)' (scalar, avx2, avx512)")
            }
            guard KernelISA.force(isa) else {
                throw UsageError(description: "this CPU cannot run the \(name) path")
            }
        default: throw UsageError(description: "unknown option '\(args[index])'")
        }
        index += 1
    }
    return options
}

let arguments = Array(CommandLine.arguments.dropFirst())
do {
    guard let command = arguments.first else { throw UsageError(description: "missing command") }
    switch command {
    case "gemm":
        let options = try parseGemmOptions(Array(arguments.dropFirst()))
        try runGemmBench(options)
    case "-h", "--help", "help":
        print(usage)
    default:
        throw UsageError(description: "unknown command '\(command)'")
    }
} catch let error as UsageError {
    FileHandle.standardError.write(Data("Error: \(error.description)\n\(usage)\nSee 'sqopt-bench --help'.\n".utf8))
    exit(2)
} catch {
    FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
    exit(1)
}
