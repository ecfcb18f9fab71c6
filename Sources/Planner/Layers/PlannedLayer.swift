import SpecParser

/// What one layer kind contributes to a plan, after shape inference (`buildModelGraph`): its
/// parameters, and the kernels it emits into the training step (forward and backward) and into
/// evaluation. Each kind is one type in this folder; `ModelGraph` holds them in order.
protocol PlannedLayer: Sendable {
    var name: String { get }
    var location: SourceLocation { get }
    /// Per-sample shape of the layer's output.
    var outputShape: [Int] { get }
    /// The parameter tensors the layer declares, in order (PyTorch's names and shapes).
    func parameters(offset: inout Int) -> [ParameterTensor]
    /// The layer's non-parameter state tensors (batch norm's running statistics), at offsets into the
    /// `model_state` buffer.
    func stateTensors(offset: inout Int) -> [StateTensor]
    /// Emits the layer's training forward kernels for input value `x`; returns its output value.
    func forward(_ builder: inout PlanBuilder, _ x: Slice, context: inout ForwardContext) -> Slice
    /// Emits the layer's backward kernels (`context` carries the gradient of its output).
    func backward(_ builder: inout PlanBuilder, context: inout BackwardContext)
    /// Emits the layer's evaluation kernels (no dropout, no stored pre-activations).
    func evaluate(_ builder: inout PlanBuilder, _ x: Slice) -> Slice
    /// The activation whose derivative a consumer's input-gradient product may apply for this layer
    /// (identity when there is none, or when the layer's output is not the activation's).
    var producedActivation: ActivationFunction { get }
    /// Whether the layer has parameters: values before the first such layer need no gradient.
    var isTrainable: Bool { get }
}

extension PlannedLayer {
    var producedActivation: ActivationFunction { .identity }
    var isTrainable: Bool { false }
    func parameters(offset: inout Int) -> [ParameterTensor] { [] }
    func stateTensors(offset: inout Int) -> [StateTensor] { [] }
}

/// What forward planning remembers for backward planning, per layer index.
struct ForwardContext {
    /// The layer's index in the graph.
    var index = 0
    /// Layer index -> its stored pre-activation (GELU's derivative needs it).
    var preactivations: [Int: Slice] = [:]
    /// Layer index -> its dropout mask.
    var masks: [Int: Slice] = [:]
    /// Layer index -> a kernel's saved values its backward pass reads (a convolution's columns, a max
    /// pool's indices, batch norm's mean and 1/std), by name.
    var saved: [Int: [String: Slice]] = [:]
}

/// The state of backward planning as it walks the layers from the last to the first.
struct BackwardContext {
    let forward: ForwardContext
    /// values[i] is the input of layer i; values[count] the model's output.
    let values: [Slice]
    let layers: [any PlannedLayer]
    /// The layer being planned.
    var index: Int
    /// Whether the layer needs its input's gradient (it is after the first trainable layer).
    var needsInputGradient: Bool
    /// The gradient of the current layer's output.
    var gradient: Slice
    /// Whether `gradient` is already taken with respect to the pre-activation of the layer that
    /// produced the value (its derivative was fused into the product that computed the gradient).
    var throughActivation = false

    var input: Slice { values[index] }
    var output: Slice { values[index + 1] }
    var preactivation: Slice? { forward.preactivations[index] }
}
