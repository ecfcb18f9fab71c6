import Files
import Foundation

/// One axis: it runs from `lower` to `upper`, the data range widened by a margin on each side so
/// no point sits on the frame (as matplotlib's 5 % margins do), and `values` are the ticks inside
/// it, `step` apart. Steps are 1, 2 or 5 times a power of ten ("nice numbers", Heckbert, Graphics
/// Gems 1990), so labels read 0.2, 0.4, ... not 0.183, 0.366.
public struct AxisTicks: Equatable, Sendable {
    public var lower: Double
    public var upper: Double
    public var step: Double
    public var values: [Double]

    /// An axis for data in `minimum...maximum` with about `targetCount` ticks. A single value gets a
    /// range of +-10 % around it (+-1 around 0, +-0.1 with `integerSteps`); non-finite bounds count as
    /// 0 and 1. With `integerSteps` the step is at least 1 (for epoch numbers).
    public init(minimum: Double, maximum: Double, targetCount: Int = 6, integerSteps: Bool = false, margin: Double = 0.05) {
        var low = minimum.isFinite ? minimum : 0
        var high = maximum.isFinite ? maximum : 1
        if low > high { swap(&low, &high) }
        if high - low < max(abs(high), abs(low), 1) * 1e-9 {
            let pad = integerSteps ? 0.1 : (low == 0 ? 1 : abs(low) * 0.1)
            low -= pad
            high += pad
        } else {
            let pad = (high - low) * max(0, margin)
            low -= pad
            high += pad
        }
        let count = max(2, targetCount)
        var step = AxisTicks.niceNumber((high - low) / Double(count - 1), round: true)
        if integerSteps { step = max(1, step.rounded()) }
        var values: [Double] = []
        var k = (low / step).rounded(.up)
        while k * step <= high + step * 1e-9, values.count <= 1000 {
            let value = k * step
            values.append(abs(value) < step * 1e-9 ? 0 : value)
            k += 1
        }
        lower = low
        upper = high
        self.step = step
        self.values = values
    }

    /// The 1, 2, 5 (or, when not rounding, 1, 2, 5, 10 ceiling) multiple of a power of ten nearest `x`.
    static func niceNumber(_ x: Double, round: Bool) -> Double {
        guard x > 0, x.isFinite else { return 1 }
        let exponent = (log10(x)).rounded(.down)
        let power = pow(10, exponent)
        let fraction = x / power
        let nice: Double
        if round {
            nice = fraction < 1.5 ? 1 : fraction < 3 ? 2 : fraction < 7 ? 5 : 10
        } else {
            nice = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10
        }
        return nice * power
    }

    /// `value` written with as many decimals as the step needs (0.05 steps: two; 20 steps: none).
    public func label(_ value: Double) -> String {
        // Steps are 1, 2 or 5 times a power of ten, so the power of ten alone fixes the decimals.
        let decimals = min(8, max(0, Int((-log10(step) - 1e-9).rounded(.up))))
        let text = String(format: "%.\(decimals)f", value)
        // "-0" and "-0.0" from tiny negative rounding read as noise.
        if text.hasPrefix("-"), text.dropFirst().allSatisfy({ $0 == "0" || $0 == "." }) { return String(text.dropFirst()) }
        return text
    }
}
