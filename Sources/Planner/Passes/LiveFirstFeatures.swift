import KernelInterface

/// The first linear layer's output features, which the runtime may store live-first during an epoch
/// (Execution's `StoredFeatureOrder`): ReLU leaves many of them dead, and with the features that were
/// live in the second half of the previous epoch first within each part's share, the weight gradient
/// skips whole 16-feature blocks whose output gradient is zero and Adam skips idle vectors' square
/// roots and divisions. The results keep every bit (each sum keeps its order), so this is a plan
/// decision about speed only.
public struct LiveFirstFeatures: Codable, Equatable, Sendable {
    public var layer: String
    /// The parts the layer's features split into on the plan's threads: its products and the
    /// optimizer step give each part the same share, and the order keeps every feature in its share.
    public var parts: Int
}

/// Gives the plan `liveFirstFeatures` when its first linear layer qualifies: its input is the gathered
/// batch (so it has no input gradient, which would sum over the features), the batch is finite for
/// every pixel value, its activation is ReLU everywhere it runs, and its products split the features
/// the same way (`liveFirstFeatureParts`). Marks the layer's products as the ordered variant and adds
/// a line to the fusions. With several ranks, the ranks agree on which features were live (a feature
/// live on any rank is), so that they store the same order and their gradient blocks line up.
func addLiveFirstFeatures(_ plan: inout Plan) -> Result<String, PassSkipped> {
    guard case .gatherBatch(let gather)? = plan.trainKernels.first else { return .failure(PassSkipped("the step has no gather")) }
    guard gather.normalization.mapsPixelsToFiniteValues else {
        return .failure(PassSkipped("the normalization maps some pixel values to non-finite inputs"))
    }
    var candidate: String? = nil
    for kernel in plan.trainKernels {
        if case .linearBackwardWeights(let k) = kernel, k.input == gather.input {
            candidate = k.layer
            break
        }
    }
    guard let layer = candidate else { return .failure(PassSkipped("no linear layer reads the gathered batch directly")) }
    guard let parts = liveFirstFeatureParts(plan, layer: layer, threads: plan.target.threads) else {
        return .failure(
            PassSkipped(
                "\(layer) does not qualify: it needs ReLU wherever it runs, no input gradient, and products that give every "
                    + "thread whole 32-feature weight panels"))
    }
    plan.liveFirstFeatures = LiveFirstFeatures(layer: layer, parts: parts)
    func mark(_ kernels: inout [Kernel]) {
        for index in kernels.indices {
            switch kernels[index] {
            case .linearForward(var k) where k.layer == layer:
                k.storedFeatureOrder = true
                kernels[index] = .linearForward(k)
            case .linearBackwardWeights(var k) where k.layer == layer:
                k.storedFeatureOrder = true
                kernels[index] = .linearBackwardWeights(k)
            default:
                break
            }
        }
    }
    mark(&plan.trainKernels)
    mark(&plan.evalKernels)
    let shares = parts == 1 ? "" : " within each of the \(parts) threads' shares"
    let optimizer = plan.optimizer.kind == .sgd ? "" : ", and \(plan.optimizer.kind.rawValue) the square roots and divisions of idle vectors"
    plan.fusions.append(
        "\(layer)'s features are stored live-first during an epoch (those live in the previous epoch first\(shares)): "
            + "its weight gradient skips 16-feature blocks whose output gradient is all zero\(optimizer); the results are the same bits")
    return .success("\(layer), \(parts) part\(parts == 1 ? "" : "s")")
}

/// The parts `layer`'s features split into when every one of its products runs on at most `threads`
/// threads, or nil when the layer cannot be stored live-first: an activation other than ReLU, an input
/// gradient, products split differently (each must run on the common number of parts or on one), a
/// split that does not give every part whole weight panels, or a workspace too small for the forward
/// product's pass over its output rows.
public func liveFirstFeatureParts(_ plan: Plan, layer: String, threads: Int) -> Int? {
    // The largest number of parts any product runs on, and whether another number above one appears.
    var split = 1, mixed = false, width = 0
    func note(_ matmul: MatmulShape) {
        let parts = min(matmul.threads, threads)
        if parts > 1 && split > 1 && parts != split { mixed = true }
        split = max(split, parts)
    }
    // Scanned without building arrays: the runtime calls this as an executor is made.
    for index in 0..<(plan.trainKernels.count + plan.evalKernels.count) {
        let kernel = index < plan.trainKernels.count ? plan.trainKernels[index] : plan.evalKernels[index - plan.trainKernels.count]
        switch kernel {
        case .linearForward(let k) where k.layer == layer:
            guard k.activation.code == .relu else { return nil }
            note(k.product)
            width = k.product.n
        case .linearBackwardWeights(let k) where k.layer == layer:
            note(k.product)
        case .linearBackwardInput(let k) where k.layer == layer:
            return nil
        default:
            continue
        }
    }
    guard width > 0, !mixed, split == 1 || splitsByOutputFeature(outFeatures: width, parts: split),
        let workspace = plan.buffers.first(where: { $0.name == "workspace" }),
        (workspace.shape.count == 2 ? workspace.shape[1] : workspace.elements) >= width
    else { return nil }
    return split
}
