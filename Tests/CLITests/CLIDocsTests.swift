import Foundation
import Testing

/// docs/cli.md against the help texts: every subcommand has a section, every option a help
/// text shows is documented, and every option the docs' tables list exists.
@Suite struct CLIDocsTests {
    static let helpPages: [(section: String, args: [String])] = [
        ("optimize", ["help", "optimize"]),
        ("inspect", ["help", "inspect"]),
        ("run", ["help", "run"]),
        ("verify", ["help", "verify"]),
        ("opt", ["help", "opt"]),
        ("calib-merge", ["help", "calib-merge"]),
        ("bench", ["bench", "--help"]),
    ]

    static func docs() throws -> String {
        try String(contentsOfFile: CLI.path("docs/cli.md"), encoding: .utf8)
    }

    /// The option names of a help text's OPTIONS block (`--name`, `-x`).
    static func options(inHelp help: String) -> Set<String> {
        guard let start = help.range(of: "OPTIONS:\n") else { return [] }
        var names: Set<String> = []
        for line in help[start.upperBound...].split(separator: "\n") {
            if !line.hasPrefix(" ") { break }              // the next block (EXAMPLES:)
            guard line.hasPrefix("  -") else { continue }  // a wrapped help line
            for match in line.dropFirst(2).matches(of: #/(?:^|, )(--?[a-zA-Z][a-zA-Z0-9-]*)/#) {
                names.insert(String(match.output.1))
            }
        }
        return names
    }

    /// The section of docs/cli.md about one command: from its `## ` heading to the next.
    static func section(_ command: String, in docs: String) -> String? {
        let heading = command == "optimize" ? "## `sqopt --passes" : "## `sqopt \(command)"
        guard let start = docs.range(of: heading) else { return nil }
        let rest = docs[start.upperBound...]
        let end = rest.range(of: "\n## ")?.lowerBound ?? rest.endIndex
        return String(rest[..<end])
    }

    @Test func optionParsingOfHelpTextsFindsOptions() throws {
        let help = try CLI.run(["help", "optimize"]).stdout
        let names = Self.options(inHelp: help)
        #expect(names.contains("--passes") && names.contains("-o") && names.contains("--output") && names.contains("--quiet"),
                "\(names.sorted())")
    }

    @Test(arguments: CLIDocsTests.helpPages.map(\.section))
    func everyHelpOptionIsDocumentedInItsSection(_ command: String) throws {
        let args = try #require(Self.helpPages.first { $0.section == command }).args
        let help = try CLI.run(args).stdout
        let section = try #require(Self.section(command, in: try Self.docs()), "docs/cli.md has no section for \(command)")
        let names = Self.options(inHelp: help)
        #expect(!names.isEmpty, "no options found in `sqopt \(args.joined(separator: " "))`")
        for name in names {
            #expect(section.contains("`\(name)"), "docs/cli.md (\(command)) does not document \(name)")
        }
    }

    /// Every option in a docs table row (`| \`--name …\` |`) is one a help text shows.
    @Test func everyDocumentedOptionExists() throws {
        var known: Set<String> = ["--help", "-h", "--version", "--list-passes"]
        for (_, args) in Self.helpPages { known.formUnion(Self.options(inHelp: try CLI.run(args).stdout)) }
        var documented: Set<String> = []
        for line in try Self.docs().split(separator: "\n") where line.hasPrefix("| `-") {
            let cell = line.dropFirst(2).prefix { $0 != "|" }
            for match in cell.matches(of: #/`(--?[a-zA-Z][a-zA-Z0-9-]*)/#) { documented.insert(String(match.output.1)) }
            for match in cell.matches(of: #/, (--?[a-zA-Z][a-zA-Z0-9-]*)/#) { documented.insert(String(match.output.1)) }
        }
        #expect(documented.count > 20, "docs/cli.md option tables not found (\(documented.count) options)")
        for name in documented.subtracting(known) {
            Issue.record("docs/cli.md documents \(name), which no help text shows")
        }
    }

    @Test func everyCommandHasASection() throws {
        let docs = try Self.docs()
        let root = try CLI.run(["--help"]).stdout
        let commands = root.components(separatedBy: "COMMANDS:\n").last?.components(separatedBy: "\n\n").first ?? ""
        var count = 0
        for line in commands.split(separator: "\n") {
            let name = String(line.drop { $0 == " " }.prefix { $0 != " " })
            guard !name.isEmpty, name != "(default)" else { continue }
            count += 1
            #expect(Self.section(name, in: docs) != nil, "docs/cli.md has no '## `sqopt \(name)' section")
        }
        #expect(count >= 6, "root help's COMMANDS list not parsed: \(commands)")
        #expect(Self.section("optimize", in: docs) != nil)
    }

    /// The documented rules carry their facts: exit codes, naming, implicit calibration, and
    /// the default quantize policy as `sqopt passes` shows it.
    @Test func docsStateTheRules() throws {
        let docs = try Self.docs()
        for fact in ["model.sq-w8a8.onnx", "model.sq-smooth.onnx", "model.sq-opt.onnx", "--force",
                     "test_data_set_*", "SQOPT_THREADS", "SQOPT_UPDATE_SNAPSHOTS"] {
            #expect(docs.contains(fact), "docs/cli.md does not mention \(fact)")
        }
        for code in ["| 0 |", "| 1 |", "| 2 |"] { #expect(docs.contains(code), "exit code row \(code) missing") }
        let passes = try CLI.run(["passes"]).stdout
        let policy = try #require(passes.firstMatch(of: #/policy=(O\d)\s+<O1\|O2\|O3>/#)?.output.1)
        let weights = try #require(passes.firstMatch(of: #/weights=([a-z-]+)\s+<per-tensor\|per-channel>/#)?.output.1)
        #expect(docs.contains("default policy is **\(policy)**"), "docs/cli.md should state the default policy \(policy)")
        #expect(docs.contains("**\(weights)** weights"), "docs/cli.md should state the default weights \(weights)")
    }
}
