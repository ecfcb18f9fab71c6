/// How the training step gathers the batch after it ahead of time. While the step runs kernels on one
/// thread (the last layer, the loss, the last layer's gradients), the other cores have nothing to do;
/// the next batch's gather runs there instead, into a second pair of batch buffers, and the next step
/// starts at its first product. Steps alternate between the two pairs, so each pair lives through the
/// whole training step.
public struct BatchPrefetch: Codable, Equatable, Sendable {
    /// The second pair, shaped like the pair the step's gather writes.
    public var input: Slice
    public var labels: Slice
    /// The training kernels the gather runs alongside: it starts before the first of them, and the
    /// next kernel that needs every thread waits for it.
    public var overlaps: Range<Int>

    /// Names of the second pair's buffers.
    public static let inputBuffer = "input.next"
    public static let labelsBuffer = "labels.next"
}

extension Plan {
    /// The input and labels the training step's gather writes (its first kernel), if it has one.
    public var trainingBatch: (input: Slice, labels: Slice)? {
        guard case .gatherBatch(let gather)? = trainKernels.first else { return nil }
        return (gather.input, gather.labels)
    }

    /// The buffers a prefetching step alternates: the gather's pair and the second pair.
    var alternatingBatchBuffers: Set<String> {
        guard let prefetch = batchPrefetch, let batch = trainingBatch else { return [] }
        return [batch.input.buffer, batch.labels.buffer, prefetch.input.buffer, prefetch.labels.buffer]
    }
}

/// Gives the plan a batch prefetch when its target has more than one thread and its training step has
/// kernels that run on one thread after the gather: the longest run of them (the first, if runs tie)
/// is the window. Declares the second pair of buffers; `allocateArena` keeps both pairs live through
/// the training step.
func addBatchPrefetch(_ plan: inout Plan) -> Result<String, PassSkipped> {
    guard plan.target.threads > 1 else { return .failure(PassSkipped("the plan has one thread")) }
    guard let batch = plan.trainingBatch else { return .failure(PassSkipped("the step has no gather")) }
    guard !plan.isRegression else { return .failure(PassSkipped("a regressor's batch has target values, which the second pair of buffers does not hold")) }
    var best: Range<Int>? = nil
    var index = 1
    while index < plan.trainKernels.count {
        guard plan.trainKernels[index].threads == 1 else {
            index += 1
            continue
        }
        var end = index
        while end < plan.trainKernels.count && plan.trainKernels[end].threads == 1 { end += 1 }
        if end - index > (best?.count ?? 0) { best = index..<end }
        index = end
    }
    guard let window = best else { return .failure(PassSkipped("every kernel after the gather runs on all threads")) }
    let input = Buffer(
        name: BatchPrefetch.inputBuffer, role: .input, elementType: .float32, shape: batch.input.shape,
        elements: batch.input.elements, offset: 0, firstUse: 0, lastUse: 0)
    let labels = Buffer(
        name: BatchPrefetch.labelsBuffer, role: .labels, elementType: .int32, shape: batch.labels.shape,
        elements: batch.labels.elements, offset: 0, firstUse: 0, lastUse: 0)
    plan.buffers += [input, labels]
    plan.batchPrefetch = BatchPrefetch(input: input.slice, labels: labels.slice, overlaps: window)
    let first = plan.trainKernels[window.lowerBound].label, last = plan.trainKernels[window.upperBound - 1].label
    plan.fusions.append(
        "the next batch is gathered by another thread during kernels \(window.lowerBound)-\(window.upperBound - 1) "
            + "(\(first) ... \(last), which use one), into \(input.name) and \(labels.name); steps alternate between the two pairs")
    return .success("during kernels \(window.lowerBound)-\(window.upperBound - 1) (\(first) ... \(last))")
}

extension Plan {
    /// The training kernels as a step whose batch is in the second pair runs them: every view of the
    /// gather's input and labels moved to the same place in the second pair. Nil without a prefetch.
    public var trainKernelsOnSecondBatchPair: [Kernel]? {
        guard let prefetch = batchPrefetch, let batch = trainingBatch else { return nil }
        let moves = [batch.input.buffer: prefetch.input, batch.labels.buffer: prefetch.labels]
        let bases = [batch.input.buffer: batch.input.offset, batch.labels.buffer: batch.labels.offset]
        return trainKernels.map { kernel in
            kernel.mapSlices { slice in
                guard let target = moves[slice.buffer], let base = bases[slice.buffer] else { return slice }
                return Slice(buffer: target.buffer, offset: target.offset + slice.offset - base, elements: slice.elements, shape: slice.shape)
            }
        }
    }
}
