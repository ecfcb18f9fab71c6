#if canImport(Glibc)
import Files
import DataSources
import Glibc
#elseif canImport(Darwin)
import Darwin
#elseif canImport(Musl)
import Musl
#endif
import KernelInterface
import Planner

/// Times a plan's training step as training runs it, and each of its kernels, after a warm-up.
///
/// Two kinds of measured steps alternate in rounds: whole steps (`forward` then `backwardAndUpdate`,
/// exactly what `Trainer` calls) and steps run one kernel at a time with a clock reading between
/// kernels. The step time comes from the first kind, the per-kernel times from the second; each is the
/// median over its steps, because these machines are shared and a mean would carry other processes'
/// bursts. Batches walk through a shuffled order of the images as an epoch does, so the gather reads
/// memory the way training does. Whole steps gather the next batch ahead as training does (with the
/// plan's batch prefetch); steps run kernel by kernel gather their own batch, so the gather has a time
/// of its own in the table.
public final class StepBenchmark {
    public let plan: Plan
    public let executor: StepExecutor
    let data: any Dataset
    let order: [Int32]

    /// - Parameters:
    ///   - plan: the plan to time; its target's threads say how many threads of `pool` a kernel uses.
    ///   - data: the images batches are drawn from (real or `LabeledImages.synthetic`).
    ///   - seed: parameter initialisation and batch order, as in training.
    public init(plan: Plan, kernels: KernelSet, pool: WorkerPool, data: any Dataset, seed: UInt64) throws {
        guard data.count >= 1, data.features == plan.inputFeatures else {
            throw RuntimeError.data(
                "the benchmark data has \(data.count) images of \(data.features) values; the plan needs images of \(plan.inputFeatures)")
        }
        try checkDataset(data, fits: plan)
        self.plan = plan
        self.data = data
        executor = try StepExecutor(plan: plan, kernels: kernels, pool: pool, dropoutSeed: seed ^ 0xD0D0_D0D0)
        initializeParameters(plan, seed: seed, into: executor.parameters)
        var indices = (0..<Int32(data.count)).map { $0 }
        var rng = Shuffler(seed: seed).generator(epoch: 1)
        fisherYates(&indices, &rng)
        order = indices
    }

    /// The median time of one kernel of the training step.
    public struct KernelTiming: Codable, Equatable, Sendable {
        /// Position in `plan.trainKernels`.
        public var index: Int
        public var label: String
        public var flops: Int
        public var seconds: Double
        /// The fastest of its runs: what it costs when no other process interferes.
        public var fastestSeconds: Double
        /// The matrix product's shape and threads, for products.
        public var matmul: MatmulShape?

        public var gflops: Double { seconds > 0 ? Double(flops) / seconds / 1e9 : 0 }
    }

    public struct Report: Codable, Equatable, Sendable {
        public var warmupSteps: Int
        public var measuredSteps: Int
        public var batchSize: Int
        /// Median and fastest of the whole steps.
        public var stepSeconds: Double
        public var fastestStepSeconds: Double
        /// The mean of the whole steps: what a run of consecutive steps pays, interference and all.
        public var meanStepSeconds: Double
        /// One entry per training kernel, in plan order.
        public var kernels: [KernelTiming]
        public var flopsPerStep: Int
        /// Steps in one epoch over `epochSamples` samples (the last one may be partial).
        public var epochSamples: Int
        public var stepsPerEpoch: Int
        /// The training kernels the next batch's gather overlaps in whole steps (nil: no prefetch), and
        /// how many measured whole steps found their batch gathered ahead.
        public var prefetchWindow: Range<Int>?
        public var prefetchedSteps: Int
        /// The layer whose features the measured steps stored live-first (as training does from its
        /// second epoch), its features, and how many were live during the warm-up (nil: none).
        public var liveFeatures: LiveFeatures?
        /// The layer that absorbs the input's shift, the share of the data's pixels that are nonzero,
        /// and whether its products skip the zero ones (nil: no such layer).
        public var shiftedInput: ShiftedInputSummary? = nil

        public struct LiveFeatures: Codable, Equatable, Sendable {
            public var layer: String
            public var features: Int
            public var live: Int
        }

        public struct ShiftedInputSummary: Codable, Equatable, Sendable {
            public var layer: String
            public var nonzeroFraction: Double
            public var skipsZeros: Bool
        }

        /// An epoch's training steps at the median step time (evaluation not included).
        public var epochSeconds: Double { Double(stepsPerEpoch) * stepSeconds }
        public var stepGFLOPs: Double { stepSeconds > 0 ? Double(flopsPerStep) / stepSeconds / 1e9 : 0 }
        /// The kernels' medians added up; the rest of the step time is dispatch and hand-off.
        public var kernelSecondsSum: Double { kernels.reduce(0) { $0 + $1.seconds } }
    }

    /// Runs `warmupSteps` whole steps, then `measuredSteps` whole steps and `measuredSteps` steps timed
    /// kernel by kernel, interleaved in rounds of 16.
    /// - Parameter epochSamples: samples per epoch for the epoch estimate (default: the data's count).
    public func run(warmupSteps: Int, measuredSteps: Int, epochSamples: Int? = nil) -> Report {
        let steps = max(1, measuredSteps)
        let kernelCount = executor.trainingKernelCount
        var stepTimes: [Double] = []
        stepTimes.reserveCapacity(steps)
        // kernelTimes[k * steps + s]: kernel k in kernel-by-kernel step s.
        var kernelTimes = [Double](repeating: 0, count: kernelCount * steps)
        var cursor = 0
        var prefetchedSteps = 0
        var liveFeatures: Report.LiveFeatures? = nil
        order.withUnsafeBufferPointer { order in
            data.withBatchSamples { samples in
                guard let samples else { return }
                let b = plan.batchSize
                let batchCount = max(1, order.count / b)
                func nextBatch() -> StepExecutor.BatchSource {
                    let start = (cursor % batchCount) * b
                    cursor += 1
                    // The batch after it, as training names it for the gather's prefetch.
                    let next = (cursor % batchCount) * b
                    return StepExecutor.BatchSource(
                        samples: samples, indices: order.baseAddress! + start, rows: min(b, order.count - start),
                        upcoming: UnsafeBufferPointer(rebasing: order[next..<min(next + b, order.count)]))
                }
                for _ in 0..<max(0, warmupSteps) {
                    let batch = nextBatch()
                    _ = executor.forward(batch)
                    executor.backwardAndUpdate(rows: batch.rows)
                }
                // As in an epoch after the first: the features live in the warm-up go first.
                liveFeatures = executor.featureOrderSummary.map { .init(layer: $0.layer, features: $0.features, live: $0.live) }
                executor.storeLiveFeaturesFirst()
                var wholeDone = 0, splitDone = 0
                while wholeDone < steps || splitDone < steps {
                    let preparedBefore = executor.stepsWithPreparedBatch
                    for _ in 0..<min(16, steps - wholeDone) {
                        let batch = nextBatch()
                        let start = monotonicSeconds()
                        _ = executor.forward(batch)
                        executor.backwardAndUpdate(rows: batch.rows)
                        stepTimes.append(monotonicSeconds() - start)
                        wholeDone += 1
                    }
                    prefetchedSteps += executor.stepsWithPreparedBatch - preparedBefore
                    for _ in 0..<min(16, steps - splitDone) {
                        let batch = nextBatch()
                        var previous = monotonicSeconds()
                        var inBackward = false
                        for k in 0..<kernelCount {
                            if !inBackward && executor.isBackwardTrainingKernel(at: k) {
                                // backwardAndUpdate counts the optimizer step before its first kernel.
                                inBackward = true
                                executor.optimizerSteps += 1
                            }
                            _ = executor.runTrainingKernel(at: k, batch)
                            let now = monotonicSeconds()
                            kernelTimes[k * steps + splitDone] = now - previous
                            previous = now
                        }
                        splitDone += 1
                    }
                }
            }
        }
        executor.restoreModelOrder()
        let kernels = plan.trainKernels.enumerated().map { index, kernel in
            KernelTiming(
                index: index, label: kernel.label, flops: kernel.flops,
                seconds: median(kernelTimes[(index * steps)..<((index + 1) * steps)]),
                fastestSeconds: kernelTimes[(index * steps)..<((index + 1) * steps)].min() ?? 0, matmul: kernel.matmul)
        }
        let samples = max(1, epochSamples ?? data.count)
        return Report(
            warmupSteps: max(0, warmupSteps), measuredSteps: steps, batchSize: plan.batchSize, stepSeconds: median(stepTimes[...]),
            fastestStepSeconds: stepTimes.min() ?? 0,
            meanStepSeconds: stepTimes.isEmpty ? 0 : stepTimes.reduce(0, +) / Double(stepTimes.count), kernels: kernels,
            flopsPerStep: plan.trainFlopsPerStep,
            epochSamples: samples, stepsPerEpoch: (samples + plan.batchSize - 1) / plan.batchSize,
            prefetchWindow: executor.prefetchesBatches ? plan.batchPrefetch?.overlaps : nil, prefetchedSteps: prefetchedSteps,
            liveFeatures: liveFeatures,
            shiftedInput: plan.shiftedInput.map {
                .init(layer: $0.layer, nonzeroFraction: data.samples.nonzeroFraction, skipsZeros: plan.passes.contains { $0.pass == .sparseInput && $0.applied })
            })
    }
}

/// What the matrix-product kernel reaches on a large square product, the yardstick for the plan's
/// products: the same kernels, the same tile policy and pool, a shape where packing and hand-off are
/// negligible.
public struct MatmulPeak: Codable, Equatable, Sendable {
    public var size: Int
    public var threads: Int
    public var seconds: Double
    public var gflops: Double { seconds > 0 ? 2 * pow(Double(size), 3) / seconds / 1e9 : 0 }

    /// Times y = x w (size x size x size, no bias, no activation) split over `threads` parts of `pool`;
    /// the fastest of `repetitions` calls after one warm-up call (a peak is what the kernel reaches when
    /// nothing interferes; the median would measure the other processes on a shared machine).
    public static func measure(
        kernels: KernelSet, pool: WorkerPool, threads: Int, size: Int = 512, repetitions: Int = 15, target: Target
    ) -> MatmulPeak {
        let n = max(16, size)
        let parts = max(1, min(threads, pool.threads))
        let tile = MatmulTile.choose(m: n, n: n, k: n, isa: kernels.isa, l2Bytes: target.l2Bytes)
        let perPart = MatmulTile.workspaceFloats(tile, m: n, n: n, k: n)
        let x = UnsafeMutablePointer<Float>.allocate(capacity: n * n)
        let w = UnsafeMutablePointer<Float>.allocate(capacity: n * n)
        let y = UnsafeMutablePointer<Float>.allocate(capacity: n * n)
        let workspace = UnsafeMutablePointer<Float>.allocate(capacity: perPart * parts)
        defer {
            x.deallocate()
            w.deallocate()
            y.deallocate()
            workspace.deallocate()
        }
        for i in 0..<(n * n) {
            x[i] = Float(i % 7) * 0.125 - 0.375
            w[i] = Float(i % 5) * 0.0625 - 0.125
        }
        let call = { (part: Int) in
            kernels.linearForward(x, w, nil, y, nil, n, n, n, .identity, 0, tile, workspace + part * perPart, part, parts, nil)
        }
        pool.run(parts: parts, call)
        var times: [Double] = []
        for _ in 0..<max(1, repetitions) {
            let start = monotonicSeconds()
            pool.run(parts: parts, call)
            times.append(monotonicSeconds() - start)
        }
        return MatmulPeak(size: n, threads: parts, seconds: times.min() ?? 0)
    }
}

extension LabeledImages {
    /// `count` images of `imageShape` with uniformly random bytes and labels below `classes`, for timing
    /// a plan without its dataset. Deterministic in `seed`.
    public static func synthetic(count: Int, imageShape: [Int], classes: Int, seed: UInt64) -> LabeledImages {
        let features = imageShape.reduce(1, *)
        var seeder = SplitMix64(state: seed)
        var rng = Xoshiro256StarStar(seeder: &seeder)
        var images = [UInt8](unsafeUninitializedCapacity: max(0, count) * features) { buffer, initialized in
            if let base = buffer.baseAddress { adviseHugePages(UnsafeMutableRawPointer(base), bytes: buffer.count) }
            buffer.initialize(repeating: 0)
            initialized = buffer.count
        }
        var i = 0
        while i < images.count {
            var bits = rng.next()
            for _ in 0..<min(8, images.count - i) {
                images[i] = UInt8(truncatingIfNeeded: bits)
                bits >>= 8
                i += 1
            }
        }
        let labels = (0..<max(0, count)).map { _ in UInt8(truncatingIfNeeded: rng.next(below: UInt64(max(1, min(classes, 256))))) }
        return LabeledImages(
            images: images, labels: labels, count: max(0, count), imageShape: imageShape, imagesPath: "(synthetic)",
            labelsPath: "(synthetic)", classes: max(1, min(classes, 256)))
    }

}

extension SampleValues {
    /// The share of all values of all samples that are not zero.
    var nonzeroFraction: Double {
        guard count > 0 else { return 0 }
        var nonzero = 0
        switch self {
        case .uint8(let values): values.withUnsafeBufferPointer { for byte in $0 where byte != 0 { nonzero += 1 } }
        case .float32(let values): values.withUnsafeBufferPointer { for value in $0 where value != 0 { nonzero += 1 } }
        }
        return Double(nonzero) / Double(count)
    }
}

func median(_ values: ArraySlice<Double>) -> Double {
    guard !values.isEmpty else { return 0 }
    let sorted = values.sorted()
    let mid = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) * 1e-9
}
