import Foundation
import SQIR
import SQPasses

/// `sqopt calib-merge A.json B.json ... -o OUT.json`: merges calibration statistics computed
/// on shards of the data. Maxima merge exactly, so merging equals calibrating on the union.
struct CalibMergeCommand {
    let driver: Driver

    static let options: [OptionSpec] = [
        .value("--output", "-o", valueName: "OUT.json", help: "the merged statistics file"),
        .flag("--force", help: "overwrite an existing output file"),
    ]

    var help: String {
        """
        USAGE: \(driver.usageLine(for: "calib-merge"))

        Merges statistics files written by --save-calib on different shards of the calibration
        data (all from the same model: their fingerprints must agree).

        OPTIONS:
        \(formatOptions(Self.options))
        """
    }

    func run(_ args: [String]) throws {
        let parsed = try parseArguments(args, specs: Self.options, command: "calib-merge")
        guard parsed.positionals.count >= 2 else {
            throw UsageError(message: "calib-merge needs at least two statistics files", command: "calib-merge")
        }
        guard let output = parsed.value("--output") else {
            throw UsageError(message: "no -o OUT.json given", command: "calib-merge")
        }
        if parsed.positionals.contains(output) {
            throw UsageError(message: "the output '\(output)' is one of the inputs", command: "calib-merge")
        }
        if FileManager.default.fileExists(atPath: output) && !parsed.has("--force") {
            throw DriverError("\(output) exists; pass --force to overwrite it")
        }
        try SmoothQuantDefaults.mergeStatistics(parsed.positionals, into: output)
        Console.out("merged \(parsed.positionals.count) statistics files into \(output)")
    }
}
