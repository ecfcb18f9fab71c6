import SpecParser

/// The variant of a linear layer's products that the shifted-input pass chooses: the layer's input
/// holds u = pixel * scale (the gather leaves the normalization's shift out), and the layer adds
/// shift * (the column sums of its weight, or of its output gradient) itself (`ShiftedInput`).
public struct InputShift: Codable, Equatable, Sendable {
    public var shift: Float
    /// The sparse-input pass: when a batch is mostly zeros, the products loop over its nonzero values
    /// instead of running the blocked product (the same bits).
    public var skipsZeroInputs: Bool

    public init(shift: Float, skipsZeroInputs: Bool) {
        self.shift = shift
        self.skipsZeroInputs = skipsZeroInputs
    }
}

/// output = act(input · weightᵀ + bias), with `preactivation` stored when the activation's derivative
/// needs it.
public struct LinearForward: KernelStep {
    public var layer: String
    public var input: Slice
    public var weight: Slice
    public var bias: Slice?
    public var output: Slice
    public var preactivation: Slice?
    public var activation: ActivationFunction
    /// The matrix product and how it is split.
    public var product: MatmulShape
    public var location: SourceLocation
    /// Set by the shifted-input pass.
    public var inputShift: InputShift? = nil
    /// Set by the live-first-features pass: the weight and bias are in the runtime's stored feature
    /// order during an epoch, and the output comes back in the model's order.
    public var storedFeatureOrder = false

    public init(
        layer: String, input: Slice, weight: Slice, bias: Slice?, output: Slice, preactivation: Slice?,
        activation: ActivationFunction, matmul: MatmulShape, location: SourceLocation
    ) {
        self.layer = layer
        self.input = input
        self.weight = weight
        self.bias = bias
        self.output = output
        self.preactivation = preactivation
        self.activation = activation
        self.product = matmul
        self.location = location
    }

    public var matmul: MatmulShape? { product }
    public var reads: [Slice] { [input, weight] + (bias.map { [$0] } ?? []) }
    public var writes: [Slice] { [output] + (preactivation.map { [$0] } ?? []) }
    public var flops: Int { product.flops + 2 * output.elements }
    public var threads: Int { product.threads }
    public var label: String { activation.isIdentity ? "\(layer).linear" : "\(layer).linear+bias+\(activation.code)" }
    public var source: SourceLocation? { location }
    public var passes: [String] { linearPasses(inputShift, storedFeatureOrder) }

    public func mapSlices(_ f: (Slice) -> Slice) -> LinearForward {
        var k = self
        k.input = f(input)
        k.weight = f(weight)
        k.bias = bias.map(f)
        k.output = f(output)
        k.preactivation = preactivation.map(f)
        return k
    }
}

/// weightGradient = (inputᵀ · outputGradient)ᵀ and biasGradient = the column sums of outputGradient,
/// in one pass.
public struct LinearBackwardWeights: KernelStep {
    public var layer: String
    public var input: Slice
    public var outputGradient: Slice
    public var weightGradient: Slice
    public var biasGradient: Slice?
    /// The matrix product and how it is split.
    public var product: MatmulShape
    public var location: SourceLocation
    /// Set by the shifted-input pass.
    public var inputShift: InputShift? = nil
    /// Set by the live-first-features pass: the gradients come out in the stored feature order, the
    /// live features are noted, and register blocks whose output gradient is all zero store zeros.
    public var storedFeatureOrder = false

    public init(
        layer: String, input: Slice, outputGradient: Slice, weightGradient: Slice, biasGradient: Slice?, matmul: MatmulShape,
        location: SourceLocation
    ) {
        self.layer = layer
        self.input = input
        self.outputGradient = outputGradient
        self.weightGradient = weightGradient
        self.biasGradient = biasGradient
        self.product = matmul
        self.location = location
    }

    public var matmul: MatmulShape? { product }
    public var reads: [Slice] { [input, outputGradient] }
    public var writes: [Slice] { [weightGradient] + (biasGradient.map { [$0] } ?? []) }
    public var flops: Int { product.flops + (biasGradient == nil ? 0 : outputGradient.elements) }
    public var threads: Int { product.threads }
    public var label: String { biasGradient == nil ? "\(layer).grad_weight" : "\(layer).grad_weight+bias" }
    public var source: SourceLocation? { location }
    public var isBackward: Bool { true }
    public var passes: [String] { linearPasses(inputShift, storedFeatureOrder) }

    public func mapSlices(_ f: (Slice) -> Slice) -> LinearBackwardWeights {
        var k = self
        k.input = f(input)
        k.outputGradient = f(outputGradient)
        k.weightGradient = f(weightGradient)
        k.biasGradient = biasGradient.map(f)
        return k
    }
}

/// inputGradient = (outputGradient · weight) ⊙ act'(the producer of the input), the derivative fused.
public struct LinearBackwardInput: KernelStep {
    public var layer: String
    public var outputGradient: Slice
    public var weight: Slice
    public var inputGradient: Slice
    public var producerActivation: ActivationFunction
    public var producerOutput: Slice
    public var producerPreactivation: Slice?
    /// The matrix product and how it is split.
    public var product: MatmulShape
    public var location: SourceLocation

    public init(
        layer: String, outputGradient: Slice, weight: Slice, inputGradient: Slice, producerActivation: ActivationFunction,
        producerOutput: Slice, producerPreactivation: Slice?, matmul: MatmulShape, location: SourceLocation
    ) {
        self.layer = layer
        self.outputGradient = outputGradient
        self.weight = weight
        self.inputGradient = inputGradient
        self.producerActivation = producerActivation
        self.producerOutput = producerOutput
        self.producerPreactivation = producerPreactivation
        self.product = matmul
        self.location = location
    }

    public var matmul: MatmulShape? { product }
    public var reads: [Slice] {
        [outputGradient, weight] + (producerActivation.isIdentity ? [] : [producerOutput])
            + (producerPreactivation.map { [$0] } ?? [])
    }
    public var writes: [Slice] { [inputGradient] }
    public var flops: Int { product.flops + (producerActivation.isIdentity ? 0 : 2 * inputGradient.elements) }
    public var threads: Int { product.threads }
    public var label: String {
        producerActivation.isIdentity ? "\(layer).grad_input" : "\(layer).grad_input*\(producerActivation.code)'"
    }
    public var source: SourceLocation? { location }
    public var isBackward: Bool { true }

    public func mapSlices(_ f: (Slice) -> Slice) -> LinearBackwardInput {
        var k = self
        k.outputGradient = f(outputGradient)
        k.weight = f(weight)
        k.inputGradient = f(inputGradient)
        k.producerOutput = f(producerOutput)
        k.producerPreactivation = producerPreactivation.map(f)
        return k
    }
}

private func linearPasses(_ shift: InputShift?, _ ordered: Bool) -> [String] {
    var names: [String] = []
    if let shift {
        names.append(PlanPass.shiftedInput.rawValue)
        if shift.skipsZeroInputs { names.append(PlanPass.sparseInput.rawValue) }
    }
    if ordered { names.append(PlanPass.liveFirstFeatures.rawValue) }
    return names
}
