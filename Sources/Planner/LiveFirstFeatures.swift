import KernelInterface

/// The first linear layer's output features, which the runtime may store live-first during an epoch
/// (Runtime's `StoredFeatureOrder`): ReLU leaves many of them dead, and with the features that were
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
/// batch (so it has no input gradient, which would sum over the features, and its input is finite),
/// its activation is ReLU everywhere it runs, and its products split the features the same way
/// (`liveFirstFeatureParts`). Adds a line to the fusions.
func addLiveFirstFeatures(_ plan: inout Plan) {
    guard case .gatherBatch(let batchInput, _, _, _)? = plan.trainKernels.first else { return }
    for kernel in plan.trainKernels {
        guard case .linearBackwardWeights(let layer, let input, _, _, _, _, _) = kernel, input == batchInput else { continue }
        guard let parts = liveFirstFeatureParts(plan, layer: layer, threads: plan.target.threads) else { return }
        plan.liveFirstFeatures = LiveFirstFeatures(layer: layer, parts: parts)
        let shares = parts == 1 ? "" : " within each of the \(parts) threads' shares"
        let optimizer = plan.optimizer.kind == .sgd ? "" : ", and \(plan.optimizer.kind.rawValue) the square roots and divisions of idle vectors"
        plan.fusions.append(
            "\(layer)'s features are stored live-first during an epoch (those live in the previous epoch first\(shares)): "
                + "its weight gradient skips 16-feature blocks whose output gradient is all zero\(optimizer); the results are the same bits")
        return
    }
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
        case .linearForward(layer, _, _, _, _, _, let activation, let matmul, _):
            guard activation.code == .relu else { return nil }
            note(matmul)
            width = matmul.n
        case .linearBackwardWeights(layer, _, _, _, _, let matmul, _):
            note(matmul)
        case .linearBackwardInput(layer, _, _, _, _, _, _, _, _):
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
