import SpecParser

/// One update of every parameter: the parameter, gradient and moment blocks are contiguous and share
/// one layout, so this is one loop.
public struct OptimizerStep: KernelStep {
    public var parameters: Slice
    public var gradients: Slice
    /// The moment blocks, named as PyTorch names them (`OptimizerSettings.stateNames`).
    public var state: [Slice]
    public var settings: OptimizerSettings
    public var threads: Int
    public var location: SourceLocation

    public init(parameters: Slice, gradients: Slice, state: [Slice], settings: OptimizerSettings, threads: Int, location: SourceLocation) {
        self.parameters = parameters
        self.gradients = gradients
        self.state = state
        self.settings = settings
        self.threads = threads
        self.location = location
    }

    public var reads: [Slice] { [parameters, gradients] + state }
    public var writes: [Slice] { [parameters] + state }
    public var flops: Int { parameters.elements * (settings.kind == .sgd ? 4 : 12) }
    public var label: String { "\(settings.kind.rawValue)_step" }
    public var source: SourceLocation? { location }
    public var isBackward: Bool { true }

    public func mapSlices(_ f: (Slice) -> Slice) -> OptimizerStep {
        OptimizerStep(
            parameters: f(parameters), gradients: f(gradients), state: state.map(f), settings: settings, threads: threads,
            location: location)
    }
}
