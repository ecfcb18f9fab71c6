import Files
import DataSources
import Foundation
import Planner

/// Fills the parameter block as the spec's initialisation says, from the seed. Weights are drawn in
/// PyTorch's order (row-major [out, in]) and stored in mlpc's panels, so a layer's values do not
/// depend on the layout mlpc chose. Each tensor draws from its own stream (seed, tensor index), so adding a
/// layer does not change the values of the layers before it.
public func initializeParameters(_ plan: Plan, seed: UInt64, into parameters: UnsafeMutablePointer<Float>) {
    parameters.initialize(repeating: 0, count: plan.parameterBlockFloats)
    for (index, tensor) in plan.parameters.enumerated() {
        if let constant = tensor.constant {
            (parameters + tensor.offset).update(repeating: constant, count: tensor.count)
            continue
        }
        var rng = Xoshiro256StarStar(seed: seed, stream: UInt64(index) &+ 1)
        let fanIn = Double(tensor.fanIn), fanOut = Double(tensor.fanOut)
        let draw: (inout Xoshiro256StarStar) -> Float
        switch (tensor.initialization, tensor.role) {
        case (.pytorchDefault, _):
            // kaiming_uniform(a = sqrt(5)) gives bound 1/sqrt(fan_in) for weights; biases use the same bound.
            let bound = 1 / fanIn.squareRoot()
            draw = { Float($0.uniform(-bound, bound)) }
        case (.xavierUniform, .weight):
            let bound = (6 / (fanIn + fanOut)).squareRoot()
            draw = { Float($0.uniform(-bound, bound)) }
        case (.kaimingUniform, .weight):
            let bound = (6 / fanIn).squareRoot()
            draw = { Float($0.uniform(-bound, bound)) }
        case (.kaimingNormal, .weight):
            let std = (2 / fanIn).squareRoot()
            draw = { Float($0.normal() * std) }
        case (.xavierUniform, .bias), (.kaimingUniform, .bias), (.kaimingNormal, .bias):
            draw = { _ in 0 }
        }
        let base = parameters + tensor.offset
        for index in 0..<tensor.count { base[tensor.storedIndex(index)] = draw(&rng) }
    }
}

extension Xoshiro256StarStar {
    /// The generator of one parameter tensor: its own stream from (seed, tensor index).
    init(seed: UInt64, stream: UInt64) {
        var seeder = SplitMix64(state: seed ^ (stream &* 0x9E37_79B9_7F4A_7C15) ^ 0x1B1D_0000_0000_0000)
        self.init(seeder: &seeder)
    }

    /// Uniform in [low, high) from 53 random bits.
    mutating func uniform(_ low: Double, _ high: Double) -> Double {
        low + (high - low) * (Double(next() >> 11) * 0x1.0p-53)
    }

    /// Standard normal by Box-Muller.
    mutating func normal() -> Double {
        let u1 = max(Double(next() >> 11) * 0x1.0p-53, 0x1.0p-60)
        let u2 = Double(next() >> 11) * 0x1.0p-53
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }
}
