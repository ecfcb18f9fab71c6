/// The pool-relu-backward pass. A max pool that reads a ReLU's output (a convolution's fused ReLU or a
/// ReLU layer) has its input gradient multiplied by the ReLU's derivative right after: the ReLU's
/// backward pass reads that gradient and the ReLU output once more and writes its own gradient. The
/// pool's backward pass applies the derivative as it writes each plane instead (`reluValues`), the
/// same multiplication of the same values, so the bits do not change: one pass over the activation
/// gradient fewer, and the ReLU's share splits over the pool's threads.
func addPoolReluBackward(_ plan: inout Plan) -> Result<String, PassSkipped> {
    let kernels = plan.trainKernels
    /// Training kernels that use each buffer (reading or writing).
    var uses: [String: Int] = [:]
    for kernel in kernels {
        for buffer in Set((kernel.reads + kernel.writes).map(\.buffer)) { uses[buffer, default: 0] += 1 }
    }
    var rewritten: [Kernel] = []
    var orphaned: Set<String> = []
    var fused: [String] = []
    var index = 0
    while index < kernels.count {
        guard index + 1 < kernels.count, case .pool2dBackward(var pool) = kernels[index], pool.indices != nil, pool.reluValues == nil,
            case .activationBackward(let relu) = kernels[index + 1], relu.activation.code == .relu,
            relu.outputGradient == pool.inputGradient, relu.output.elements == pool.inputGradient.elements,
            relu.inputGradient.elements == pool.inputGradient.elements,
            // Nothing else may read the pool's own gradient: the ReLU overwrites it in place, or no
            // other kernel uses its buffer.
            relu.inputGradient == pool.inputGradient || uses[pool.inputGradient.buffer] == 2
        else {
            rewritten.append(kernels[index])
            index += 1
            continue
        }
        if relu.inputGradient != pool.inputGradient { orphaned.insert(pool.inputGradient.buffer) }
        // The parts for the pool's work (as its layer estimates it) and the ReLU's together.
        let flops = pool.inputGradient.elements * 4 + relu.flops, planes = pool.inputGradient.elements / pool.geometry.inPixels
        pool.threads = partThreads(flops: flops, units: planes, available: plan.target.threads)
        pool.reluValues = relu.output
        pool.reluLayer = relu.layer
        // Windows that do not overlap read the pooled values instead, a quarter of the ReLU output.
        if pool.geometry.isInside2x2, let pooled = pooledReluOutput(kernels, pool: pool, relu: relu) {
            pool.reluValues = pooled
            pool.reluValuesArePooled = true
        }
        pool.inputGradient = relu.inputGradient
        rewritten.append(.pool2dBackward(pool))
        fused.append("\(relu.layer) into \(pool.layer)")
        index += 2
    }
    guard !fused.isEmpty else { return .failure(PassSkipped("no max pool's input gradient goes only to a ReLU's backward pass")) }
    plan.trainKernels = rewritten
    plan.buffers.removeAll { orphaned.contains($0.name) }
    plan.fusions.append(
        "ReLU backward fused into the max pool backward after it (the derivative applied as each plane is written; same bits): "
            + fused.joined(separator: ", "))
    return .success(fused.joined(separator: ", "))
}

/// The output of `pool`'s forward pass when that pass read exactly `relu`'s output and no other training
/// kernel writes the pooled values: then each pooled value is the ReLU output at its window's argmax.
private func pooledReluOutput(_ kernels: [Kernel], pool: Pool2dBackward, relu: ActivationBackward) -> Slice? {
    var forward: Pool2dForward? = nil
    for kernel in kernels {
        if case .pool2dForward(let k) = kernel, k.layer == pool.layer, k.indices == pool.indices { forward = k }
    }
    guard let forward, forward.input.buffer == relu.output.buffer, forward.input.offset == relu.output.offset,
        forward.input.elements == relu.output.elements,
        kernels.filter({ kernel in kernel.writes.contains { $0.buffer == forward.output.buffer } }).count == 1
    else { return nil }
    return forward.output
}
