import Foundation
import SQIR

/// `sqopt opt FILE.sqir --passes LIST [-o OUT]`: IR text in, the pass pipeline, IR text out;
/// sqopt's `mlir-opt`, for pass tests: an IR file carries `// CHECK` lines that are matched
/// against what `opt` prints (docs/custom-pass.md). The text format is docs/ir.md. Constants
/// print in full, so the output parses again. The pass-manager flags are the optimize
/// command's (`PipelineFlags`), and so is the pipeline: requirements a pass declares are
/// provided the same way (upgrade-opset before quantize on an older model).
struct OptCommand {
    let driver: Driver

    static let options: [OptionSpec] = [
        .value("--passes", valueName: "LIST", help: "the pipeline, e.g. canonicalize-norms,fold-constants,dce"),
        .value("--output", "-o", valueName: "OUT", help: "write the IR to OUT instead of stdout"),
        .flag("--force", help: "overwrite an existing output file"),
        .flag("--split-input-file", help: "run every '// -----' case of FILE on its own; print them separated the same way"),
        .flag("--allow-elided-constants", help: "read '<N elements>' constants as zeros (structural tests only)"),
    ] + PipelineFlags.options

    /// The case separator of `--split-input-file`, in the input and in the output.
    static let caseSeparator = "// -----"

    var help: String {
        """
        USAGE: \(driver.usageLine(for: "opt"))

        Reads FILE as IR text (docs/ir.md; '-' reads stdin), runs the pass pipeline over it and
        prints the result as IR text, constants in full, on stdout or into OUT. Pass tests are
        written this way: IR text with // CHECK lines, run through `opt`, the output checked
        against those lines (docs/custom-pass.md). Diagnostics, IR dumps and tables go to
        stderr. IR text carries no calibration samples: passes that need statistics (smooth,
        quantize{policy=O3}) fail here.

        OPTIONS:
        \(formatOptions(Self.options))
        EXAMPLES:
          \(driver.toolName) opt graph.sqir --passes canonicalize-norms,fold-constants,dce
          \(driver.toolName) opt cases.sqir --passes quantize --split-input-file --remarks -o out.sqir
          \(driver.toolName) opt - --passes quantize --print-ir-after upgrade-opset --time-passes < graph.sqir
        """
    }

    func run(_ args: [String]) throws {
        let parsed = try parseArguments(args, specs: Self.options, command: "opt")
        let input = try parsed.single("FILE", command: "opt")
        let pipeline = try PipelineFlags.pipeline(parsed, registry: driver.registry, command: "opt", example: "canonicalize-norms,dce")
        let output = parsed.value("--output")
        if let output { try checkOutputPath(output, input: input, force: parsed.has("--force"), command: "opt") }

        let text = try Self.read(input)
        let file = input == "-" ? "<stdin>" : input
        let cases = parsed.has("--split-input-file") ? Self.splitCases(text) : [(text: text, line: 1)]
        let parser = IRParser(allowElidedConstants: parsed.has("--allow-elided-constants"), file: file)
        var printed: [String] = []
        for testCase in cases {
            do {
                // Blank lines in front keep FILE's line numbers in the parser's errors.
                let model = try parser.parseModel(String(repeating: "\n", count: testCase.line - 1) + testCase.text)
                let context = PassContext()
                context.onDiagnostic = PipelineFlags.diagnosticPrinter(parsed, quiet: false)
                try PipelineFlags.manager(pipeline, registry: driver.registry, parsed: parsed).run(on: model, context: context)
                printed.append(IRPrinter(maxConstantElements: .max).print(model))
            } catch {
                if cases.count > 1 { Console.error("note: in the case at \(file):\(testCase.line)") }
                throw error
            }
        }
        let result = printed.joined(separator: Self.caseSeparator + "\n")
        if let output {
            try Data(result.utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
        } else {
            Console.out(result, terminator: "")
        }
    }

    static func read(_ input: String) throws -> String {
        if input == "-" { return String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self) }
        guard let data = FileManager.default.contents(atPath: input) else {
            throw DriverError("\(input): cannot read the file")
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// The cases of a `--split-input-file` input (separated by lines that are exactly
    /// `// -----`), each with the line it starts on; blank cases are dropped.
    static func splitCases(_ text: String) -> [(text: String, line: Int)] {
        var cases: [(text: String, line: Int)] = []
        var current: [Substring] = []
        var start = 1
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if line.trimmingCharacters(in: .whitespaces) == caseSeparator {
                cases.append((current.joined(separator: "\n"), start))
                current = []
                start = index + 2
            } else {
                current.append(line)
            }
        }
        cases.append((current.joined(separator: "\n"), start))
        return cases.filter { !$0.text.allSatisfy(\.isWhitespace) }
    }
}
