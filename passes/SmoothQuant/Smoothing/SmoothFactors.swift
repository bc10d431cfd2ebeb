import Foundation

/// SmoothQuant's per-channel smoothing factors (Xiao et al. 2022, eq. 4):
///
///     s_j = max|X_j|^α / max(max|W_j|, 1e-5)^(1−α),   then s_j ← max(s_j, 1e-5)
///
/// `max|W_j|` runs over input channel j of every weight in the group (q/k/v share one `s`).
/// The clamps are the reference implementation's (mit-han-lab/smoothquant `smooth_ln_fcs`).
/// A dead channel (`max|X_j| = 0`) or a non-finite activation range gets `s_j = 1`: the
/// reference would give `1e-5` there and multiply γ by 1e5, which is exact on the calibration
/// data but explodes on any input where the channel wakes up.
///
/// Computed in Double and rounded once to Float (tools/fakequant_reference.py does the same).
public enum SmoothFactors {
    public static let weightFloor = 1e-5
    public static let factorFloor = 1e-5

    /// One factor per channel. `activationAbsMax` and `weightAbsMax` have equal length.
    public static func compute(activationAbsMax: [Float], weightAbsMax: [Float], alpha: Double) -> [Float] {
        precondition(activationAbsMax.count == weightAbsMax.count, "channel counts differ")
        return zip(activationAbsMax, weightAbsMax).map { ax, aw in
            factor(activationAbsMax: Double(ax), weightAbsMax: Double(aw), alpha: alpha)
        }
    }

    static func factor(activationAbsMax ax: Double, weightAbsMax aw: Double, alpha: Double) -> Float {
        guard ax > 0, ax.isFinite else { return 1 }
        let w = aw.isFinite ? Swift.max(aw, weightFloor) : 1
        let s = Swift.max(Foundation.pow(ax, alpha) / Foundation.pow(w, 1 - alpha), factorFloor)
        guard s.isFinite else { return 1 }
        return Float(s)
    }

    /// Element-wise maximum over the groups' weights: `max|W_j|` across every layer.
    public static func groupWeightAbsMax(_ layers: [LinearLayer]) -> [Float] {
        guard let first = layers.first else { return [] }
        var out = first.inputChannelAbsMax()
        for layer in layers.dropFirst() {
            for (j, v) in layer.inputChannelAbsMax().enumerated() where v > out[j] { out[j] = v }
        }
        return out
    }
}
