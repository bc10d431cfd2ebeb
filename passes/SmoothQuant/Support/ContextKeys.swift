import SQIR

/// Calibration statistics of the model being optimized: written by `calibrate` (or by the CLI
/// from `--load-calib`), updated by `smooth`, read by `quantize{policy=O3}`.
public enum CalibrationStatisticsKey: PassContextKey {
    public typealias Value = CalibrationStatistics
}

/// The statistics exactly as `calibrate` produced them, before any pass updated them (smooth
/// divides channel ranges and re-fingerprints them for the smoothed graph). This is what
/// `--save-calib` should write: it loads back onto the original model.
public enum CalibrationResultKey: PassContextKey {
    public typealias Value = CalibrationStatistics
}

/// The samples `calibrate` runs (the CLI sets it from `--calib DIR` with SQDriver's
/// `CalibrationDirectory`, which reads the files; the pass library does no file I/O).
public enum CalibrationSamplesKey: PassContextKey {
    public typealias Value = any CalibrationSampleSource
}

/// Called by `calibrate` after every sample (the CLI draws a progress bar on a TTY).
public enum CalibrationProgressKey: PassContextKey {
    public typealias Value = (CalibrationProgress) -> Void
}

/// Runs the model for `calibrate`; when absent, `calibrate` lowers the model with the
/// interpreter (SQRuntime). Tests and tools may install another executor.
public enum CalibrationRunnerKey: PassContextKey {
    public typealias Value = (Model) throws -> Calibrator.Runner
}

/// What `smooth` did per group (for `--report`).
public enum SmoothReportKey: PassContextKey {
    public typealias Value = [SmoothGroupReport]
}

/// What `quantize` did.
public enum QuantizeReportKey: PassContextKey {
    public typealias Value = QuantizeReport
}

/// Sampled rows of linear inputs, by value name (kept in memory only, never saved).
public enum CalibrationRowsKey: PassContextKey {
    public typealias Value = [String: RowReservoir]
}
