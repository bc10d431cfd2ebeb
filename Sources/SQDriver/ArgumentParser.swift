import SQIR

/// A small command-line parser: `--flag`, `--option value`, `--option=value`, `-o value`,
/// repeated options, and positionals. Declared options only; anything else is a usage error
/// with a "did you mean" hint.
struct OptionSpec {
    enum Kind { case flag, value, repeated }
    let names: [String]          // e.g. ["--output", "-o"]
    let kind: Kind
    let valueName: String
    let help: String

    static func flag(_ names: String..., help: String) -> OptionSpec {
        OptionSpec(names: names, kind: .flag, valueName: "", help: help)
    }
    static func value(_ names: String..., valueName: String, help: String) -> OptionSpec {
        OptionSpec(names: names, kind: .value, valueName: valueName, help: help)
    }
    static func repeated(_ names: String..., valueName: String, help: String) -> OptionSpec {
        OptionSpec(names: names, kind: .repeated, valueName: valueName, help: help)
    }

    var primary: String { names[0] }
}

/// Parsed arguments of one command.
struct ParsedArguments {
    var flags: Set<String> = []
    var values: [String: [String]] = [:]
    var positionals: [String] = []

    func has(_ name: String) -> Bool { flags.contains(name) }
    func value(_ name: String) -> String? { values[name]?.last }
    func all(_ name: String) -> [String] { values[name] ?? [] }

    /// The one positional argument a command takes; `what` names it in the usage error
    /// ("no MODEL given: inspect takes exactly one MODEL", "... one MODEL, got 2").
    func single(_ what: String, command: String) throws -> String {
        guard positionals.count == 1, let only = positionals.first else {
            let rule = "\(command) takes exactly one \(what)"
            throw UsageError(message: positionals.isEmpty ? "no \(what) given: \(rule)" : "\(rule), got \(positionals.count)",
                             command: command)
        }
        return only
    }
}

/// A usage error: printed with the command's usage line, exit code 2.
struct UsageError: Error, CustomStringConvertible {
    let message: String
    let command: String
    var description: String { message }
}

func parseArguments(_ args: [String], specs: [OptionSpec], command: String) throws -> ParsedArguments {
    var byName: [String: OptionSpec] = [:]
    for spec in specs { for n in spec.names { byName[n] = spec } }
    var result = ParsedArguments()
    var i = 0
    var onlyPositionals = false
    while i < args.count {
        let arg = args[i]
        i += 1
        if onlyPositionals || !arg.hasPrefix("-") || arg == "-" {
            result.positionals.append(arg)
            continue
        }
        if arg == "--" { onlyPositionals = true; continue }
        var name = arg
        var inlineValue: String?
        if arg.hasPrefix("--"), let eq = arg.firstIndex(of: "=") {
            name = String(arg[..<eq])
            inlineValue = String(arg[arg.index(after: eq)...])
        }
        guard let spec = byName[name] else {
            let known = byName.keys.filter { $0.hasPrefix("--") }
            var msg = "unknown option '\(name)'"
            if let guess = closestMatch(name, in: Array(known)) { msg += "; did you mean '\(guess)'?" }
            throw UsageError(message: msg, command: command)
        }
        switch spec.kind {
        case .flag:
            if inlineValue != nil { throw UsageError(message: "option '\(name)' takes no value", command: command) }
            result.flags.insert(spec.primary)
        case .value, .repeated:
            let v: String
            if let inlineValue { v = inlineValue } else {
                guard i < args.count else {
                    throw UsageError(message: "option '\(name)' needs a value (\(spec.valueName))", command: command)
                }
                v = args[i]
                i += 1
            }
            if spec.kind == .value, result.values[spec.primary] != nil {
                throw UsageError(message: "option '\(name)' given more than once", command: command)
            }
            result.values[spec.primary, default: []].append(v)
        }
    }
    return result
}

/// Help text for a list of options, aligned in two columns.
func formatOptions(_ specs: [OptionSpec]) -> String {
    let left = specs.map { spec -> String in
        let names = spec.names.sorted { $0.count < $1.count }.joined(separator: ", ")
        return spec.kind == .flag ? names : "\(names) \(spec.valueName)"
    }
    let width = min((left.map(\.count).max() ?? 0) + 2, 34)
    var out = ""
    for (l, spec) in zip(left, specs) {
        if l.count + 2 > width {
            out += "  \(l)\n" + String(repeating: " ", count: width + 2) + spec.help + "\n"
        } else {
            out += "  " + l + String(repeating: " ", count: width - l.count) + spec.help + "\n"
        }
    }
    return out
}
