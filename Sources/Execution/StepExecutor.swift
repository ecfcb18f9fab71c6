import Files
import DataSources
import CFloatEnvironment
import CMemoryHints
import Foundation
import KernelInterface
import Planner
import SpecParser

/// Runs a plan's kernels over its arena. Every slice is resolved to a pointer once, here, so a step is a
/// walk over a flat list of bound kernels: no lookups, no allocation, nothing optional in the loops.
public final class StepExecutor {
    public let plan: Plan
    public let arena: Arena
    public let kernels: KernelSet
    let pool: WorkerPool
    let threads: Int
    /// The training kernels bound to each pair of batch buffers: [0] to the plan's input and labels,
    /// [1], with a batch prefetch, to the second pair. A step runs the list of the pair its batch is in.
    let trainByPair: [[BoundKernel]]
    let eval: [BoundKernel]
    /// With a batch prefetch this executor can run (more than one thread): the next batch, and the
    /// training kernel before which its gather starts.
    let prepared: PreparedBatch?
    let prefetchStart: Int
    /// The pair holding the batch of the step in progress.
    var pair = 0
    /// Steps whose batch the previous step had gathered ahead of time.
    public private(set) var stepsWithPreparedBatch = 0
    let workspace: UnsafeMutablePointer<Float>
    let workspaceStride: Int
    /// Optimizer steps taken so far (Adam's bias correction and SGD's first momentum step use it).
    public var optimizerSteps: Int = 0
    /// Dropout draws from (seed, step) so a resumed run continues the same stream.
    public var dropoutSeed: UInt64
    /// The first layer's features stored live-first during epochs (`StoredFeatureOrder`), when the plan
    /// allows it.
    let featureOrder: StoredFeatureOrder?
    /// The training kernel that updates the parameters (the last one).
    let optimizerIndex: Int
    /// Each pair's loss gradient (rows x width), which data parallelism rescales.
    let lossGradientByPair: [(UnsafeMutablePointer<Float>, Int)]

    /// Runs `plan` as it is: the passes it records (`Plan.passes`) decide every variant that runs.
    public init(plan: Plan, kernels: KernelSet, pool: WorkerPool, dropoutSeed: UInt64) throws {
        self.plan = plan
        self.kernels = kernels
        self.pool = pool
        self.threads = max(1, min(plan.target.threads, pool.threads))
        self.dropoutSeed = dropoutSeed
        // The calling thread runs part 0 of every kernel; the pool's workers set the same mode.
        mlpc_enable_flush_to_zero()
        arena = try Arena(bytes: plan.arenaBytes)
        guard let ws = plan.buffer(named: "workspace") else { throw RuntimeError.data("the plan has no workspace buffer") }
        workspace = (arena.base + ws.offset).assumingMemoryBound(to: Float.self)
        workspaceStride = ws.shape.count == 2 ? ws.shape[1] : ws.elements
        let arena = self.arena
        let threads = self.threads
        if let block = plan.buffer(named: "model_state") {
            let state = arena.floats(block.slice)
            for tensor in plan.modelState { (state + tensor.offset).update(repeating: tensor.initialValue, count: tensor.count) }
        }
        let optimizerParts = plan.trainKernels.first { if case .optimizerStep = $0 { return true } else { return false } }
            .map { min($0.threads, threads) } ?? 1
        let binding = KernelBinding(arena: arena, threads: threads, optimizerShares: optimizerShares(plan, parts: optimizerParts))
        featureOrder = makeFeatureOrder(plan, threads: threads)
        eval = plan.evalKernels.map { $0.bind(binding) }
        let firstPair = plan.trainKernels.map { $0.bind(binding) }
        let scratch = workspace
        guard let optimizer = plan.trainKernels.lastIndex(where: { if case .optimizerStep = $0 { return true } else { return false } }) else {
            throw RuntimeError.data("the plan's training step has no optimizer step")
        }
        optimizerIndex = optimizer
        func lossGradient(_ kernels: [Kernel]) -> (UnsafeMutablePointer<Float>, Int) {
            for kernel in kernels {
                switch kernel {
                case .softmaxCrossEntropy(let k): return (arena.floats(k.gradient), k.gradient.shape.dropFirst().reduce(1, *))
                case .meanSquaredError(let k): return (arena.floats(k.gradient), k.gradient.shape.dropFirst().reduce(1, *))
                case .regressionLoss(let k): return (arena.floats(k.gradient), k.gradient.shape.dropFirst().reduce(1, *))
                default: continue
                }
            }
            return (scratch, 0)
        }
        if threads > 1, let prefetch = plan.batchPrefetch, let secondPair = plan.trainKernelsOnSecondBatchPair?.map({ $0.bind(binding) }),
            let gather = firstPair.first?.gather, let spare = secondPair.first?.gather
        {
            trainByPair = [firstPair, secondPair]
            lossGradientByPair = [lossGradient(plan.trainKernels), lossGradient(plan.trainKernelsOnSecondBatchPair ?? plan.trainKernels)]
            let prepared = PreparedBatch(capacity: plan.batchSize, gathers: [gather, spare], kernels: kernels)
            self.prepared = prepared
            prefetchStart = prefetch.overlaps.lowerBound
        } else {
            trainByPair = [firstPair]
            lossGradientByPair = [lossGradient(plan.trainKernels)]
            prepared = nil
            prefetchStart = -1
        }
    }

    deinit {
        // A gather still running writes into this arena.
        pool.waitForBackground()
    }

    /// Whether training steps gather the next batch ahead of time (the plan's batch prefetch, on a
    /// pool of more than one thread).
    public var prefetchesBatches: Bool { prepared != nil }

    /// The parameter block, in the model's order (`restoreModelOrder` first).
    public var parameters: UnsafeMutablePointer<Float> {
        restoreModelOrder()
        return parameterBlock
    }
    /// The model's non-parameter state (batch norm's running statistics), nil when it has none; the
    /// executor sets PyTorch's initial values.
    public var modelState: UnsafeMutablePointer<Float>? { plan.buffer(named: "model_state").map { arena.floats($0.slice) } }
    public var gradients: UnsafeMutablePointer<Float> { arena.floats(plan.buffer(named: "gradients")!.slice) }
    /// Optimizer state block `i`, in the model's order (`restoreModelOrder` first).
    public func stateBlock(_ i: Int) -> UnsafeMutablePointer<Float> {
        restoreModelOrder()
        return stateBlockInStoredOrder(i)
    }

    var parameterBlock: UnsafeMutablePointer<Float> { arena.floats(plan.buffer(named: "parameters")!.slice) }
    func stateBlockInStoredOrder(_ i: Int) -> UnsafeMutablePointer<Float> {
        let name = plan.optimizer.stateNames[i]
        return arena.floats(plan.buffer(named: name)!.slice)
    }

    /// The blocks a feature order rearranges: parameters and optimizer state. The gradient block,
    /// which every step writes whole before reading it, is the scratch.
    var orderedBlocks: [UnsafeMutablePointer<Float>] {
        [parameterBlock] + (0..<plan.optimizer.stateBlocks).map(stateBlockInStoredOrder)
    }

    /// Between steps (a batch may be gathering ahead: it touches none of these blocks): stores the first
    /// layer's features that were live since the last call first (`StoredFeatureOrder`). Steps give the
    /// same bits whatever the order.
    /// `agree` makes the ranks of a data-parallel run agree on the liveness (`StoredFeatureOrder.reorder`).
    public func storeLiveFeaturesFirst(agreeing agree: ((UnsafeMutablePointer<Float>, Int) -> Void)? = nil) {
        guard let featureOrder else { return }
        featureOrder.reorder(orderedBlocks, scratch: gradients, agree: agree)
    }

    /// Forgets which features were live so far, so that the next `storeLiveFeaturesFirst` goes by the
    /// steps from here on (training calls it halfway through an epoch: units die during the first one).
    public func restartLivenessRecording() {
        featureOrder?.restartLiveness()
    }

    /// Puts the parameter and state blocks back in the model's order (a no-op when they are).
    public func restoreModelOrder() {
        guard let featureOrder, !featureOrder.isIdentity else { return }
        featureOrder.restoreModelOrder(orderedBlocks, scratch: gradients)
    }

    /// The layer whose features may be stored live-first, its features, and how many were live since the
    /// order was last set (for `mlpc bench`).
    public var featureOrderSummary: (layer: String, features: Int, live: Int)? {
        featureOrder.map { ($0.layer, $0.outFeatures, $0.liveCount) }
    }

    /// The source of a batch: a dataset's samples and labels (`BatchSamples`), and the row indices to
    /// take. `upcoming` names the rows of the batch after this one, when the caller knows it: a training
    /// step with a batch prefetch gathers them ahead, on another thread, and a gather in place
    /// prefetches them into cache. The samples and labels are read until that step's
    /// `backwardAndUpdate` returns; the indices only during the call that is given them.
    public struct BatchSource {
        public var samples: BatchSamples
        public var indices: UnsafePointer<Int32>
        public var rows: Int
        public var upcoming: UnsafeBufferPointer<Int32>

        public init(
            samples: BatchSamples, indices: UnsafePointer<Int32>, rows: Int,
            upcoming: UnsafeBufferPointer<Int32> = UnsafeBufferPointer(start: nil, count: 0)
        ) {
            self.samples = samples
            self.indices = indices
            self.rows = rows
            self.upcoming = upcoming
        }
    }

    /// Forward and loss of one training batch; returns the mean loss. Call `backwardAndUpdate` next.
    /// Split so the numerics guard can look at the loss before any parameter changes.
    /// With a batch prefetch, a batch whose rows the previous step gathered ahead of time starts at its
    /// first product; any other batch is gathered here, and `batch.upcoming` is gathered ahead for the
    /// next step. Either way the kernels see the same bytes.
    public func forward(_ batch: BatchSource) -> Float {
        pool.waitForBackground()
        var gathered = false
        if let prepared {
            if prepared.holds(batch) {
                pair = prepared.pair
                gathered = true
                stepsWithPreparedBatch += 1
            }
            prepared.schedule(batch.upcoming, into: 1 - pair, from: batch)
        }
        let kernels = trainByPair[pair]
        var loss: Float = 0
        for index in kernels.indices {
            let kernel = kernels[index]
            if kernel.isBackward { break }
            if index == prefetchStart { startPreparingNextBatch() }
            if gathered && kernel.gather != nil { continue }
            if let l = kernel.run(self, batch, batch.rows) { loss = l }
        }
        return loss
    }

    public func backwardAndUpdate(rows: Int) {
        backward(rows: rows)
        update()
    }

    /// The backward kernels of the step whose `forward` ran, up to the optimizer step: the gradient
    /// block then holds the batch's gradients (data parallelism sums them over the ranks here).
    public func backward(rows: Int) {
        let kernels = trainByPair[pair]
        for index in kernels.indices where kernels[index].isBackward && index != optimizerIndex {
            if index == prefetchStart { startPreparingNextBatch() }
            _ = kernels[index].run(self, nil, rows)
        }
    }

    /// The optimizer step over the gradient block, which ends the training step.
    public func update() {
        optimizerSteps += 1
        let kernels = trainByPair[pair]
        if optimizerIndex == prefetchStart { startPreparingNextBatch() }
        _ = kernels[optimizerIndex].run(self, nil, 0)
        // The gather ahead reads the caller's images: it ends before the step returns, so the batch's
        // memory is only read during the caller's forward and backwardAndUpdate calls. (The reference
        // plan's window ends before fc2's products, which wait for it anyway.)
        pool.waitForBackground()
    }

    /// For a rank whose share of a batch is empty (data parallelism): a zero gradient block, which the
    /// sum over the ranks then fills, and no batch in flight.
    public func clearGradients() {
        forgetPreparedBatch()
        gradients.update(repeating: 0, count: plan.parameterBlockFloats)
    }

    /// Multiplies the loss gradient of the step whose `forward` ran by `factor`: a rank's loss kernel
    /// divides by its own rows, and the sum over ranks must be the mean over the global batch.
    public func scaleLossGradient(by factor: Float, rows: Int) {
        guard factor != 1 else { return }
        let (gradient, width) = lossGradientByPair[pair]
        for i in 0..<(rows * width) { gradient[i] *= factor }
    }

    /// Hands the scheduled gather of the next batch to the pool's workers; the next kernel that needs
    /// every thread, or the next step, waits for it.
    @inline(__always)
    func startPreparingNextBatch() {
        guard let prepared, prepared.state == .scheduled else { return }
        prepared.state = .gathering
        pool.startBackground(parts: prepared.parts, prepared)
    }

    /// Before running kernels outside a step's order (the benchmark's kernel-by-kernel steps, the
    /// numerics report, evaluation, whose buffers may share the pairs' bytes): the gather ahead has
    /// finished and its batch is forgotten, so the next step gathers its own.
    func forgetPreparedBatch() {
        pool.waitForBackground()
        prepared?.state = .idle
    }

    /// For `StepBenchmark`, which times a step kernel by kernel: how many kernels a training step has,
    /// whether kernel `index` belongs to `backwardAndUpdate` (whose caller counts the optimizer step
    /// first), and running kernel `index` alone exactly as a step runs it (nothing allocated).
    /// Kernel by kernel, a step gathers its own batch (into the plan's pair) and none ahead.
    var trainingKernelCount: Int { trainByPair[0].count }
    func isBackwardTrainingKernel(at index: Int) -> Bool { trainByPair[0][index].isBackward }
    func runTrainingKernel(at index: Int, _ batch: BatchSource) -> Float? {
        if index == 0 {
            forgetPreparedBatch()
            pair = 0
        }
        return trainByPair[0][index].run(self, batch, batch.rows)
    }

    /// Runs the forward kernels of the training step one at a time and returns the first whose output is
    /// not finite (for the numerics guard's report), or nil.
    public func firstNonFiniteForwardKernel(_ batch: BatchSource) -> (label: String, source: SourceLocation?)? {
        // Rerun on the plan's own pair: the slices checked below are the plan's, so a batch gathered
        // ahead into the second pair would be checked in the wrong buffers.
        forgetPreparedBatch()
        pair = 0
        for (index, kernel) in trainByPair[0].enumerated() {
            if kernel.isBackward { break }
            _ = kernel.run(self, batch, batch.rows)
            for slice in plan.trainKernels[index].writes where plan.buffer(named: slice.buffer)?.elementType == .float32 {
                let count = slice.elements / max(slice.shape.first ?? 1, 1) * batch.rows
                let p = arena.floats(slice)
                for i in 0..<min(count, slice.elements) where !p[i].isFinite {
                    return (plan.trainKernels[index].label, plan.trainKernels[index].source)
                }
            }
        }
        return nil
    }

    /// Evaluation forward pass over `rows` samples; predictions land in the plan's predictions buffer.
    public func evaluate(_ batch: BatchSource) -> UnsafeMutablePointer<Int32> {
        forgetPreparedBatch()
        var predictions: UnsafeMutablePointer<Int32>? = nil
        for kernel in eval {
            _ = kernel.run(self, batch, batch.rows)
            if let classified = kernel.classified { predictions = classified.predictions }
        }
        return predictions!
    }

    /// The logits of the last evaluation step (rows x classes).
    public var evalLogits: UnsafeMutablePointer<Float> {
        for kernel in eval {
            if let classified = kernel.classified { return classified.logits }
        }
        fatalError("a plan always ends evaluation with classify")
    }
}

/// The batch gathered ahead of time into the pair of batch buffers the current step does not use (the
/// plan's `BatchPrefetch`), with the rows it holds, so that the next step can check they are the rows
/// it was asked for. The gather runs on a worker; the pool's wait orders it before any use.
final class PreparedBatch: PoolJob {
    enum State {
        /// Nothing gathered ahead.
        case idle
        /// Rows named, gather not started yet.
        case scheduled
        /// The gather started (and has finished once the pool has waited for it).
        case gathering
    }
    var state = State.idle
    let capacity: Int
    let indices: UnsafeMutablePointer<Int32>
    var rows = 0
    var samples: BatchSamples?
    /// The pair the rows go to.
    var pair = 0
    /// The gather of each pair: the same map into the pair's own input and labels.
    let gathers: [BoundGather]
    let kernels: KernelSet
    /// The parts the gather runs in (the pool's background job has as many).
    var parts: Int { gathers[0].parts }

    init(capacity: Int, gathers: [BoundGather], kernels: KernelSet) {
        self.capacity = max(1, capacity)
        indices = .allocate(capacity: self.capacity)
        self.gathers = gathers
        self.kernels = kernels
    }

    deinit { indices.deallocate() }

    /// Names the rows to gather ahead into `pair` (nothing when there are none, or more than a batch).
    func schedule(_ upcoming: UnsafeBufferPointer<Int32>, into pair: Int, from batch: StepExecutor.BatchSource) {
        guard let base = upcoming.baseAddress, upcoming.count > 0, upcoming.count <= capacity else {
            state = .idle
            return
        }
        indices.update(from: base, count: upcoming.count)
        rows = upcoming.count
        samples = batch.samples
        self.pair = pair
        state = .scheduled
    }

    /// Whether the gathered rows are exactly `batch`'s: the same images and the same row indices.
    func holds(_ batch: StepExecutor.BatchSource) -> Bool {
        guard state == .gathering, batch.rows == rows, batch.samples == samples else { return false }
        return memcmp(batch.indices, indices, rows * MemoryLayout<Int32>.stride) == 0
    }

    /// Part `part` of the gather (a background job of the pool). Its rows are random rows of the
    /// dataset, most of them in memory rather than cache: the part first asks for all of its rows'
    /// lines at once, so that they arrive together rather than one row after another (measured with
    /// `mlpc bench`: the step's wait for the gather went from 5.6-9 to 2-4 us on average).
    func run(part: Int) {
        guard let samples else { return }
        let share = partRange(count: rows, granule: 1, part: part, parts: parts)
        prefetchRows(samples, indices + share.lowerBound, share.count)
        gathers[pair].run(kernels, samples, indices, rows: rows, part: part, parts: parts)
    }
}

/// The ranges of the parameter block each of `parts` parts of the optimizer step updates (one part when
/// the plan runs the step on one thread). A layer whose weight gradient runs on several parts and splits
/// its output features (`splitsByOutputFeature`, `outputFeatureShare`) gives each part the weight panels
/// and bias entries of its features, the ones that part computed and, in the forward product, reads:
/// they stay in that core's cache. The other tensors, and the
/// padding between tensors, are shared out in even contiguous ranges. Every float of the block is in
/// exactly one range, and the update is elementwise, so the split never changes a bit.
func optimizerShares(_ plan: Plan, parts requested: Int) -> [[Range<Int>]] {
    let total = plan.parameterBlockFloats
    let parts = max(1, requested)
    guard parts > 1 else { return [total > 0 ? [0..<total] : []] }
    // Layers whose weight gradient splits its output features over `threads` parts.
    var featureParts: [String: Int] = [:]
    for kernel in plan.trainKernels {
        guard case .linearBackwardWeights(let k) = kernel else { continue }
        let threads = min(k.product.threads, parts)
        if threads > 1 && splitsByOutputFeature(outFeatures: k.product.n, parts: threads) { featureParts[k.layer] = threads }
    }
    var shares = [[Range<Int>]](repeating: [], count: parts)
    var rest: [Range<Int>] = []
    var covered = 0
    for tensor in plan.parameters.sorted(by: { $0.offset < $1.offset }) {
        if tensor.offset > covered { rest.append(covered..<tensor.offset) }
        let end = tensor.offset + tensor.storedCount
        covered = max(covered, end)
        guard let threads = featureParts[tensor.layer] else {
            rest.append(tensor.offset..<end)
            continue
        }
        for part in 0..<threads {
            let features = outputFeatureShare(outFeatures: tensor.shape[0], part: part, parts: threads)
            let local: Range<Int>
            switch tensor.role {
            case .weight: local = WeightPanels.storedRange(features: features, outFeatures: tensor.shape[0], inFeatures: tensor.shape[1])
            case .bias: local = features
            }
            if !local.isEmpty { shares[part].append((tensor.offset + local.lowerBound)..<(tensor.offset + local.upperBound)) }
        }
    }
    if covered < total { rest.append(covered..<total) }
    // The rest, merged where contiguous, then cut into even pieces in order.
    var merged: [Range<Int>] = []
    for range in rest where !range.isEmpty {
        if let last = merged.last, last.upperBound == range.lowerBound {
            merged[merged.count - 1] = last.lowerBound..<range.upperBound
        } else {
            merged.append(range)
        }
    }
    let restCount = merged.reduce(0) { $0 + $1.count }
    for part in 0..<parts {
        let share = partRange(count: restCount, granule: 16, part: part, parts: parts)
        var position = 0
        for range in merged {
            let from = max(share.lowerBound, position), to = min(share.upperBound, position + range.count)
            if from < to { shares[part].append((range.lowerBound + from - position)..<(range.lowerBound + to - position)) }
            position += range.count
        }
    }
    return shares
}

/// The `StoredFeatureOrder` for the plan's `liveFirstFeatures` on the executor's `threads` (which can be
/// fewer than the plan's), or nil when the plan has none or the layer does not qualify on so many.
func makeFeatureOrder(_ plan: Plan, threads: Int) -> StoredFeatureOrder? {
    guard let chosen = plan.liveFirstFeatures, let parts = liveFirstFeatureParts(plan, layer: chosen.layer, threads: threads),
        let weight = plan.parameters.first(where: { $0.layer == chosen.layer && $0.role == .weight })
    else { return nil }
    let bias = plan.parameters.first { $0.layer == chosen.layer && $0.role == .bias }
    return StoredFeatureOrder(layer: chosen.layer, weight: weight, bias: bias, parts: parts)
}
