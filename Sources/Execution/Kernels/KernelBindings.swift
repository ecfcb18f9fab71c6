import Files
import DataSources
import CMemoryHints
import KernelInterface
import Planner

/// A kernel of the plan bound to the arena: its slices resolved to pointers once, when the executor is
/// made, and a function that runs it over `rows` rows of the step's batch with the kernel set and the
/// executor's threads. A step is a walk over these; nothing is looked up or allocated while it runs.
struct BoundKernel {
    /// Runs the kernel; the loss kernels return the batch's mean loss.
    let run: (_ executor: StepExecutor, _ batch: StepExecutor.BatchSource?, _ rows: Int) -> Float?
    /// Backward and optimizer kernels run after the loss.
    let isBackward: Bool
    /// The pointers a gather writes (a batch prefetch gathers into another pair with the same map).
    let gather: BoundGather?
    /// The logits and predictions of a classify kernel.
    let classified: (logits: UnsafeMutablePointer<Float>, predictions: UnsafeMutablePointer<Int32>)?

    init(
        isBackward: Bool, gather: BoundGather? = nil,
        classified: (logits: UnsafeMutablePointer<Float>, predictions: UnsafeMutablePointer<Int32>)? = nil,
        run: @escaping (_ executor: StepExecutor, _ batch: StepExecutor.BatchSource?, _ rows: Int) -> Float?
    ) {
        self.run = run
        self.isBackward = isBackward
        self.gather = gather
        self.classified = classified
    }
}

/// What binding a kernel needs beyond its own slices.
struct KernelBinding {
    let arena: Arena
    /// The executor's threads: a kernel runs on the plan's threads for it, capped by these.
    let threads: Int
    /// The ranges of the parameter block each part of the optimizer step updates (`optimizerShares`).
    let optimizerShares: [[Range<Int>]]

    func floats(_ s: Planner.Slice) -> UnsafeMutablePointer<Float> { arena.floats(s) }
    func int32s(_ s: Planner.Slice) -> UnsafeMutablePointer<Int32> { arena.int32s(s) }
    /// Floats per row of a [rows, ...] slice.
    func width(_ s: Planner.Slice) -> Int { s.shape.dropFirst().reduce(1, *) }
    func parts(_ kernel: some KernelStep) -> Int { max(1, min(kernel.threads, threads)) }
}

extension Kernel {
    /// The kernel bound to the executor's arena: each kind binds itself (its `bind`).
    func bind(_ binding: KernelBinding) -> BoundKernel {
        switch self {
        case .gatherBatch(let k): return k.bind(binding)
        case .linearForward(let k): return k.bind(binding)
        case .activationForward(let k): return k.bind(binding)
        case .dropoutForward(let k): return k.bind(binding)
        case .softmaxCrossEntropy(let k): return k.bind(binding)
        case .meanSquaredError(let k): return k.bind(binding)
        case .regressionLoss(let k): return k.bind(binding)
        case .activationBackward(let k): return k.bind(binding)
        case .dropoutBackward(let k): return k.bind(binding)
        case .linearBackwardWeights(let k): return k.bind(binding)
        case .linearBackwardInput(let k): return k.bind(binding)
        case .optimizerStep(let k): return k.bind(binding)
        case .classify(let k): return k.bind(binding)
        case .conv2dForward(let k): return k.bind(binding)
        case .conv2dBackwardWeights(let k): return k.bind(binding)
        case .conv2dBackwardInput(let k): return k.bind(binding)
        case .pool2dForward(let k): return k.bind(binding)
        case .pool2dBackward(let k): return k.bind(binding)
        case .batchNormForward(let k): return k.bind(binding)
        case .batchNormBackward(let k): return k.bind(binding)
        case .batchNormFold(let k): return k.bind(binding)
        }
    }
}

/// A gather's destination and map: row r of `input` gets sample indices[r]'s values v as v * scale +
/// shift, and `labels` its label.
struct BoundGather {
    let input: UnsafeMutablePointer<Float>
    let labels: UnsafeMutablePointer<Int32>
    /// A regressor's batch of target values, `targetWidth` a row.
    var targets: UnsafeMutablePointer<Float>? = nil
    var targetWidth = 0
    let scale: Float
    let shift: Float
    let parts: Int

    /// Part `part` of `parts` of gathering the `rows` samples named by `indices`, with the kernel for
    /// the samples' element type.
    @inline(__always)
    func run(_ k: KernelSet, _ samples: BatchSamples, _ indices: UnsafePointer<Int32>, rows: Int, part: Int, parts: Int) {
        switch samples.element {
        case .uint8:
            k.gatherRows(
                samples.values.assumingMemoryBound(to: UInt8.self), samples.labels, samples.features, indices, rows, scale, shift,
                input, labels, part, parts)
        case .float32:
            k.gatherFloatRows(
                samples.values.assumingMemoryBound(to: Float.self), samples.labels, samples.features, indices, rows, scale, shift,
                input, labels, part, parts)
        }
        if let targets, let values = samples.targetValues {
            k.gatherTargetRows(values, targetWidth, indices, rows, targets, part, parts)
        }
    }
}

extension GatherBatch {
    func bind(_ b: KernelBinding) -> BoundKernel {
        var gather = BoundGather(input: b.floats(input), labels: b.int32s(labels), scale: normalization.scale, shift: shift, parts: b.parts(self))
        if let targets {
            gather.targets = b.floats(targets)
            gather.targetWidth = b.width(targets)
        }
        return BoundKernel(isBackward: false, gather: gather) { executor, batch, _ in
            guard let batch else { return nil }
            let k = executor.kernels
            let p = max(1, min(gather.parts, batch.rows))
            executor.pool.run(parts: p) { part in
                gather.run(k, batch.samples, batch.indices, rows: batch.rows, part: part, parts: p)
                // Each part prefetches the rows it will gather next time (the same split).
                if let upcoming = batch.upcoming.baseAddress {
                    let share = partRange(count: batch.upcoming.count, granule: 1, part: part, parts: p)
                    prefetchRows(batch.samples, upcoming + share.lowerBound, share.count)
                }
            }
            return nil
        }
    }
}


/// Asks for the cache lines of `count` samples named by `indices`.
@inline(__always)
func prefetchRows(_ samples: BatchSamples, _ indices: UnsafePointer<Int32>, _ count: Int) {
    let bytes = samples.element == .uint8 ? samples.features : samples.features * 4
    mlpc_prefetch_rows(samples.values.assumingMemoryBound(to: UInt8.self), bytes, indices, count)
}

extension Classify {
    func bind(_ b: KernelBinding) -> BoundKernel {
        let logits = b.floats(self.logits), predictions = b.int32s(self.predictions), classes = b.width(self.logits)
        return BoundKernel(isBackward: false, classified: (logits, predictions)) { executor, _, rows in
            executor.kernels.argmaxRows(logits, rows, classes, predictions)
            return nil
        }
    }
}

extension SoftmaxCrossEntropy {
    func bind(_ b: KernelBinding) -> BoundKernel {
        let logits = b.floats(self.logits), labels = b.int32s(self.labels), gradient = b.floats(self.gradient)
        let rowLoss = b.floats(self.rowLoss), classes = b.width(self.logits)
        return BoundKernel(isBackward: false) { executor, _, rows in
            executor.kernels.softmaxCrossEntropy(logits, labels, rows, classes, gradient, rowLoss)
        }
    }
}

extension MeanSquaredError {
    func bind(_ b: KernelBinding) -> BoundKernel {
        let output = b.floats(self.output), labels = b.int32s(self.labels), gradient = b.floats(self.gradient)
        let classes = b.width(self.output)
        return BoundKernel(isBackward: false) { executor, _, rows in
            executor.kernels.meanSquaredError(output, labels, rows, classes, gradient)
        }
    }
}

extension RegressionLoss {
    func bind(_ b: KernelBinding) -> BoundKernel {
        let output = b.floats(self.output), targets = b.floats(self.targets), gradient = b.floats(self.gradient)
        let width = b.width(self.output), code = kindCode, delta = self.delta
        return BoundKernel(isBackward: false) { executor, _, rows in
            executor.kernels.regressionLoss(code, delta, output, targets, rows, width, gradient)
        }
    }
}

extension OptimizerStep {
    func bind(_ b: KernelBinding) -> BoundKernel {
        let params = b.floats(parameters), grads = b.floats(gradients)
        let s0 = state.first.map(b.floats) ?? grads
        let s1 = state.count > 1 ? b.floats(state[1]) : s0
        let settings = self.settings, shares = b.optimizerShares
        return BoundKernel(isBackward: true) { executor, _, _ in
            let k = executor.kernels
            let step = executor.optimizerSteps
            func update(_ part: Int) {
                for range in shares[part] {
                    let at = range.lowerBound, count = range.count
                    switch settings.kind {
                    case .sgd:
                        k.sgdStep(
                            params + at, grads + at, settings.stateBlocks > 0 ? s0 + at : nil, count, settings.lr, settings.momentum,
                            settings.dampening, settings.nesterov, settings.weightDecay, step == 1, 0, 1)
                    case .adam, .adamw:
                        k.adamStep(
                            params + at, grads + at, s0 + at, s1 + at, count, settings.lr, settings.beta1, settings.beta2,
                            settings.eps, settings.weightDecay, settings.kind == .adamw, step, 0, 1)
                    }
                }
            }
            // One part runs here without the pool, which would first wait for a gather running ahead.
            if shares.count == 1 { update(0) } else { executor.pool.run(parts: shares.count, update) }
            return nil
        }
    }
}
