import SpecParser

/// output = act(input), for an activation layer that no linear absorbed.
public struct ActivationForward: KernelStep {
    public var layer: String
    public var input: Slice
    public var output: Slice
    public var activation: ActivationFunction
    public var location: SourceLocation

    public init(layer: String, input: Slice, output: Slice, activation: ActivationFunction, location: SourceLocation) {
        self.layer = layer
        self.input = input
        self.output = output
        self.activation = activation
        self.location = location
    }

    public var reads: [Slice] { [input] }
    public var writes: [Slice] { [output] }
    public var flops: Int { input.elements }
    public var threads: Int { 1 }
    public var label: String { "\(layer).\(activation.code)" }
    public var source: SourceLocation? { location }

    public func mapSlices(_ f: (Slice) -> Slice) -> ActivationForward {
        ActivationForward(layer: layer, input: f(input), output: f(output), activation: activation, location: location)
    }
}

/// inputGradient = outputGradient * act', the derivative taken from the output, or from the
/// pre-activation for GELU (an activation layer standing alone, or a linear's that nobody fused).
public struct ActivationBackward: KernelStep {
    public var layer: String
    public var outputGradient: Slice
    public var preactivation: Slice?
    public var output: Slice
    public var inputGradient: Slice
    public var activation: ActivationFunction
    public var location: SourceLocation

    public init(
        layer: String, outputGradient: Slice, preactivation: Slice?, output: Slice, inputGradient: Slice,
        activation: ActivationFunction, location: SourceLocation
    ) {
        self.layer = layer
        self.outputGradient = outputGradient
        self.preactivation = preactivation
        self.output = output
        self.inputGradient = inputGradient
        self.activation = activation
        self.location = location
    }

    public var reads: [Slice] { [outputGradient, output] + (preactivation.map { [$0] } ?? []) }
    public var writes: [Slice] { [inputGradient] }
    public var flops: Int { 2 * outputGradient.elements }
    public var threads: Int { 1 }
    public var label: String { "\(layer).\(activation.code)_backward" }
    public var source: SourceLocation? { location }
    public var isBackward: Bool { true }

    public func mapSlices(_ f: (Slice) -> Slice) -> ActivationBackward {
        ActivationBackward(
            layer: layer, outputGradient: f(outputGradient), preactivation: preactivation.map(f), output: f(output),
            inputGradient: f(inputGradient), activation: activation, location: location)
    }
}

/// Inverted dropout: output = input * mask, mask[i] 0 or 1/(1-p), drawn from (seed, step, i).
public struct DropoutForward: KernelStep {
    public var layer: String
    public var input: Slice
    public var output: Slice
    public var mask: Slice
    public var p: Double
    public var location: SourceLocation

    public init(layer: String, input: Slice, output: Slice, mask: Slice, p: Double, location: SourceLocation) {
        self.layer = layer
        self.input = input
        self.output = output
        self.mask = mask
        self.p = p
        self.location = location
    }

    public var reads: [Slice] { [input] }
    public var writes: [Slice] { [output, mask] }
    public var flops: Int { 2 * input.elements }
    public var threads: Int { 1 }
    public var label: String { "\(layer).dropout" }
    public var source: SourceLocation? { location }

    public func mapSlices(_ f: (Slice) -> Slice) -> DropoutForward {
        DropoutForward(layer: layer, input: f(input), output: f(output), mask: f(mask), p: p, location: location)
    }
}

/// inputGradient = outputGradient * mask.
public struct DropoutBackward: KernelStep {
    public var layer: String
    public var outputGradient: Slice
    public var mask: Slice
    public var inputGradient: Slice
    public var location: SourceLocation

    public init(layer: String, outputGradient: Slice, mask: Slice, inputGradient: Slice, location: SourceLocation) {
        self.layer = layer
        self.outputGradient = outputGradient
        self.mask = mask
        self.inputGradient = inputGradient
        self.location = location
    }

    public var reads: [Slice] { [outputGradient, mask] }
    public var writes: [Slice] { [inputGradient] }
    public var flops: Int { outputGradient.elements }
    public var threads: Int { 1 }
    public var label: String { "\(layer).dropout_backward" }
    public var source: SourceLocation? { location }
    public var isBackward: Bool { true }

    public func mapSlices(_ f: (Slice) -> Slice) -> DropoutBackward {
        DropoutBackward(layer: layer, outputGradient: f(outputGradient), mask: f(mask), inputGradient: f(inputGradient), location: location)
    }
}
