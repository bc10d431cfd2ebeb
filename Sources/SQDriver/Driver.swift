import Foundation
import SQIR

/// Process exit codes: 0 success, 1 failure (bad model, bad data, I/O), 2 usage error.
public enum ExitCode: Int32, Sendable {
    case success = 0
    case failure = 1
    case usage = 2
}

/// The `sqopt` command line. A custom tool (see examples/CustomPass) builds a `Driver` with
/// its own pass registry and calls `run`, so its passes behave exactly like the built-ins.
public struct Driver {
    public static let version = "0.1.0"
    public var toolName: String
    public var registry: PassRegistry

    public init(toolName: String = "sqopt", registry: PassRegistry) {
        self.toolName = toolName
        self.registry = registry
    }

    /// Runs the command line (without the program name) and returns the exit code.
    public func run(_ arguments: [String]) -> ExitCode {
        do {
            try dispatch(arguments)
            return .success
        } catch let error as UsageError {
            Console.error("Error: \(error.message)")
            Console.error("Usage: \(usageLine(for: error.command))")
            Console.error("See '\(toolName) \(error.command.isEmpty ? "" : "help \(error.command)")\(error.command.isEmpty ? "--help" : "")'.")
            return .usage
        } catch let error as PipelineError {
            Console.error("Error: \(error)")
            Console.error("Usage: \(usageLine(for: ""))")
            Console.error("See '\(toolName) passes' for the registered passes and their options.")
            return .usage
        } catch {
            Console.error("error: \(error)")
            return .failure
        }
    }

    /// Entry point for executables: runs `CommandLine.arguments` and exits.
    public func main() -> Never {
        let code = run(Array(CommandLine.arguments.dropFirst()))
        exit(code.rawValue)
    }

    func dispatch(_ args: [String]) throws {
        guard let first = args.first else {
            Console.out(rootHelp())
            throw UsageError(message: "no model given", command: "")
        }
        let rest = Array(args.dropFirst())
        switch first {
        case "inspect": try InspectCommand(driver: self).run(rest)
        case "run": try RunCommand(driver: self).run(rest)
        case "verify": try VerifyCommand(driver: self).run(rest)
        case "opt": try OptCommand(driver: self).run(rest)
        case "passes": try listPasses(rest)
        case "calib-merge": try CalibMergeCommand(driver: self).run(rest)
        case "bench": try BenchCommand(driver: self).run(rest)
        case "help": try help(rest)
        case "--help", "-h": Console.out(rootHelp())
        case "--version": Console.out("\(toolName) \(Driver.version)")
        case "--list-passes": try listPasses(rest)
        default:
            if !first.hasPrefix("-") && !first.contains(".") && !first.contains("/")
                && !FileManager.default.fileExists(atPath: first) {
                var msg = "unknown command '\(first)'"
                if let guess = closestMatch(first, in: Self.commands.map(\.name)) { msg += "; did you mean '\(guess)'?" }
                throw UsageError(message: msg, command: "")
            }
            try OptimizeCommand(driver: self).run(args)
        }
    }

    static let commands: [(name: String, summary: String)] = [
        ("(default)", "optimize a model: sqopt --passes LIST MODEL [-o OUT]"),
        ("inspect", "show a model's opsets, inputs/outputs, op histogram and parameters"),
        ("run", "execute a model with sqopt's interpreter and write its outputs as .npy"),
        ("verify", "compare a candidate model's outputs against a reference model's"),
        ("opt", "run a pass pipeline over IR text and print the IR (pass tests)"),
        ("passes", "list the registered passes, their summaries and options"),
        ("calib-merge", "merge calibration statistics files computed on shards of the data"),
        ("bench", "time a model's runs in sqopt's interpreter (median/min ms)"),
        ("help", "show help for a command"),
    ]

    func usageLine(for command: String) -> String {
        switch command {
        case "inspect": return "\(toolName) inspect MODEL [--json]"
        case "run": return "\(toolName) run MODEL (--input NAME=FILE ... | --data DIR) --output-dir OUT"
        case "verify": return "\(toolName) verify REFERENCE CANDIDATE --data DIR [--layerwise] [--json]"
        case "opt": return "\(toolName) opt FILE.sqir --passes LIST [options] [-o OUT]"
        case "passes": return "\(toolName) passes"
        case "calib-merge": return "\(toolName) calib-merge A.json B.json [...] -o OUT.json"
        case "bench": return "\(toolName) \(BenchCommand.usage)"
        default: return "\(toolName) --passes LIST [options] MODEL [-o OUT]"
        }
    }

    func help(_ args: [String]) throws {
        guard let command = args.first else { Console.out(rootHelp()); return }
        switch command {
        case "inspect": Console.out(InspectCommand(driver: self).help)
        case "run": Console.out(RunCommand(driver: self).help)
        case "verify": Console.out(VerifyCommand(driver: self).help)
        case "opt": Console.out(OptCommand(driver: self).help)
        case "calib-merge": Console.out(CalibMergeCommand(driver: self).help)
        case "bench": Console.out(BenchCommand(driver: self).help)
        case "optimize", "passes":
            Console.out(command == "passes" ? passListing() : OptimizeCommand(driver: self).help)
        default:
            var msg = "no help for unknown command '\(command)'"
            if let guess = closestMatch(command, in: Self.commands.map(\.name)) { msg += "; did you mean '\(guess)'?" }
            throw UsageError(message: msg, command: "")
        }
    }

    func rootHelp() -> String {
        var s = """
        \(toolName) \(Driver.version): SmoothQuant W8A8 quantization for ONNX transformer models.

        USAGE:
          \(toolName) --passes LIST [options] MODEL [-o OUT]
          \(toolName) <command> [options]

        COMMANDS:

        """
        for c in Self.commands { s += "  " + c.name.padding(toLength: 13, withPad: " ", startingAt: 0) + c.summary + "\n" }
        s += """

        EXAMPLES:
          Quantize a model (calibration data found beside it in test_data_set_*/):
            \(toolName) --passes smooth,quantize model.onnx
          The full pipeline with explicit calibration data and output:
            \(toolName) --passes calibrate,smooth{alpha=0.5},quantize{policy=O3} --calib DATA model.onnx -o model.int8.onnx
          Run a model on sample inputs:
            \(toolName) run model.onnx --data test_data_set_0 --output-dir out/
          Compare the quantized model with the original:
            \(toolName) verify model.onnx model.int8.onnx --data test_data_set_0
          Run passes over IR text (how pass tests are written):
            \(toolName) opt graph.sqir --passes canonicalize-norms,dce
          List passes:            \(toolName) passes
          Write a custom pass:    see docs/custom-pass.md

        See '\(toolName) help <command>' or '\(toolName) help optimize' for options.
        """
        return s
    }

    func passListing() -> String {
        "Registered passes (use as --passes a,b{option=value},c):\n\n" + registry.listing()
    }

    func listPasses(_ args: [String]) throws {
        guard args.isEmpty else { throw UsageError(message: "'passes' takes no arguments", command: "passes") }
        Console.out(passListing(), terminator: "")
    }
}

/// Where the CLI prints. Tests capture output by running the binary.
enum Console {
    static func out(_ s: String, terminator: String = "\n") {
        FileHandle.standardOutput.write(Data((s + terminator).utf8))
    }
    static func error(_ s: String, terminator: String = "\n") {
        FileHandle.standardError.write(Data((s + terminator).utf8))
    }
    static var stderrIsTerminal: Bool { isatty(2) != 0 }
}
