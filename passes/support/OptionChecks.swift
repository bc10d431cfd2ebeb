import SQIR

/// Range checks for numeric pass options, failing with the pipeline error every pass reports
/// for a bad option value (the pass, the option, the value and what was expected).
extension Pass {
    /// `options[option]`, required to be a percentile in (0, 100].
    static func percentile(_ options: PassOptions, _ option: PassOption<Double>) throws -> Double {
        let value = options[option]
        guard value > 0 && value <= 100 else {
            throw PipelineError.invalidOptionValue(pass: name, option: option.name, value: value.optionText,
                                                   expected: "a number in (0, 100]")
        }
        return value
    }

    /// `options[option]`, required to be 0 or more.
    static func nonNegative(_ options: PassOptions, _ option: PassOption<Int>) throws -> Int {
        let value = options[option]
        guard value >= 0 else {
            throw PipelineError.invalidOptionValue(pass: name, option: option.name, value: value.optionText,
                                                   expected: "0 or more")
        }
        return value
    }
}
