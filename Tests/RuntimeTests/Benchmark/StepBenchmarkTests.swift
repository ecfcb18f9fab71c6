import Foundation
import KernelInterface
import Planner
import SpecParser
import XCTest

@testable import Runtime
@testable import Figures
@testable import Files
@testable import DataSources
@testable import Execution

/// The benchmark's structure and arithmetic; never its timings (they depend on the machine's load).
final class StepBenchmarkTests: XCTestCase {
    static let layers = "    - flatten\n    - linear: {out: 16, activation: relu}\n    - linear: {out: 3}"

    func makePlan(threads: Int = 1) throws -> Plan {
        try TinyData.plan(TinyData.specText(layers: Self.layers), threads: threads).1
    }

    func images(count: Int = 100, seed: UInt64 = 5) -> LabeledImages {
        LabeledImages.synthetic(count: count, imageShape: [TinyData.side, TinyData.side], classes: TinyData.classes, seed: seed)
    }

    func testReportHasOneTimingPerTrainingKernelInPlanOrder() throws {
        let plan = try makePlan()
        let benchmark = try StepBenchmark(
            plan: plan, kernels: kernels(for: plan.target.isa), pool: WorkerPool(threads: 1), data: images(), seed: 3)
        let report = benchmark.run(warmupSteps: 2, measuredSteps: 5)
        XCTAssertEqual(report.kernels.map(\.label), plan.trainKernels.map(\.label))
        XCTAssertEqual(report.kernels.map(\.index), Array(plan.trainKernels.indices))
        XCTAssertEqual(report.kernels.map(\.flops), plan.trainKernels.map(\.flops))
        XCTAssertEqual(report.kernels.map(\.matmul), plan.trainKernels.map(\.matmul))
        for kernel in report.kernels {
            XCTAssertGreaterThan(kernel.seconds, 0, kernel.label)
            XCTAssertLessThanOrEqual(kernel.fastestSeconds, kernel.seconds, kernel.label)
        }
        XCTAssertGreaterThan(report.stepSeconds, 0)
        XCTAssertLessThanOrEqual(report.fastestStepSeconds, report.stepSeconds)
        XCTAssertEqual(report.flopsPerStep, plan.trainFlopsPerStep)
        XCTAssertEqual(report.measuredSteps, 5)
        XCTAssertEqual(report.warmupSteps, 2)
    }

    func testEpochEstimateCountsAPartialLastBatch() throws {
        let plan = try makePlan()
        let benchmark = try StepBenchmark(
            plan: plan, kernels: kernels(for: plan.target.isa), pool: WorkerPool(threads: 1), data: images(count: 100), seed: 3)
        let report = benchmark.run(warmupSteps: 0, measuredSteps: 1)
        XCTAssertEqual(plan.batchSize, 16)
        XCTAssertEqual(report.epochSamples, 100)
        XCTAssertEqual(report.stepsPerEpoch, 7)
        XCTAssertEqual(report.epochSeconds, 7 * report.stepSeconds)
        XCTAssertEqual(benchmark.run(warmupSteps: 0, measuredSteps: 1, epochSamples: 60_000).stepsPerEpoch, 3750)
    }

    /// One whole step then one step run kernel by kernel train exactly as two ordinary steps do.
    func testKernelByKernelStepsTrainLikeWholeSteps() throws {
        let plan = try makePlan()
        let data = images()
        let set = kernels(for: plan.target.isa)
        let benchmark = try StepBenchmark(plan: plan, kernels: set, pool: WorkerPool(threads: 1), data: data, seed: 3)
        _ = benchmark.run(warmupSteps: 0, measuredSteps: 1)
        XCTAssertEqual(benchmark.executor.optimizerSteps, 2)

        let reference = try ordinarySteps(2, plan: plan, data: data, order: benchmark.order)
        XCTAssertEqual(parameterBits(benchmark.executor), parameterBits(reference))
    }

    /// A fresh executor initialised as the benchmark initialises its own (seed 3), after `steps`
    /// ordinary steps over `order`, batch after batch and round again, as the benchmark walks it.
    func ordinarySteps(_ steps: Int, plan: Plan, data: LabeledImages, order: [Int32]) throws -> StepExecutor {
        let reference = try StepExecutor(
            plan: plan, kernels: kernels(for: plan.target.isa), pool: WorkerPool(threads: plan.target.threads),
            dropoutSeed: 3 ^ 0xD0D0_D0D0)
        initializeParameters(plan, seed: 3, into: reference.parameters)
        let batches = order.count / plan.batchSize
        data.images.withUnsafeBufferPointer { images in
            data.labels.withUnsafeBufferPointer { labels in
                order.withUnsafeBufferPointer { order in
                    for step in 0..<steps {
                        let batch = StepExecutor.BatchSource(
                            images: images.baseAddress!, labels: labels.baseAddress!, features: data.featureCount,
                            indices: order.baseAddress! + (step % batches) * plan.batchSize, rows: plan.batchSize)
                        _ = reference.forward(batch)
                        reference.backwardAndUpdate(rows: batch.rows)
                    }
                }
            }
        }
        return reference
    }

    func parameterBits(_ executor: StepExecutor) -> [UInt32] {
        Array(UnsafeBufferPointer(start: executor.parameters, count: executor.plan.parameterBlockFloats)).map(\.bitPattern)
    }

    func testImagesOfAnotherSizeAreRejected() throws {
        let plan = try makePlan()
        let wrong = LabeledImages.synthetic(count: 10, imageShape: [5, 5], classes: 3, seed: 1)
        XCTAssertThrowsError(
            try StepBenchmark(plan: plan, kernels: kernels(for: plan.target.isa), pool: WorkerPool(threads: 1), data: wrong, seed: 1))
    }

    func testSyntheticImagesAreDeterministicWithLabelsBelowTheClassCount() {
        let a = images(count: 50, seed: 9), b = images(count: 50, seed: 9), c = images(count: 50, seed: 10)
        XCTAssertEqual(a.images, b.images)
        XCTAssertEqual(a.labels, b.labels)
        XCTAssertNotEqual(a.images, c.images)
        XCTAssertEqual(a.images.count, 50 * TinyData.side * TinyData.side)
        XCTAssertEqual(a.count, 50)
        XCTAssertTrue(a.labels.allSatisfy { $0 < TinyData.classes })
        XCTAssertEqual(Set(a.labels).count, TinyData.classes)
    }

    func testMatmulPeakReportsItsShapeAndThreads() throws {
        let set = kernels(for: CPUFeatures.current().bestISA)
        let peak = MatmulPeak.measure(
            kernels: set, pool: WorkerPool(threads: 2), threads: 2, size: 64, repetitions: 2, target: .reference)
        XCTAssertEqual(peak.size, 64)
        XCTAssertEqual(peak.threads, 2)
        XCTAssertGreaterThan(peak.gflops, 0)
        XCTAssertEqual(peak.gflops, 2 * 64 * 64 * 64 / peak.seconds / 1e9, accuracy: 1e-6 * peak.gflops)
    }

    // MARK: rendering

    /// fc1's forward product on two threads (MatmulShape has no public initializer: plans make them).
    static func fc1Shape() throws -> MatmulShape {
        let tile = String(decoding: try JSONEncoder().encode(MatmulTile.choose(m: 64, n: 128, k: 784, isa: .avx512)), as: UTF8.self)
        let json = "{\"m\": 64, \"n\": 128, \"k\": 784, \"threads\": 2, \"tile\": \(tile)}"
        return try JSONDecoder().decode(MatmulShape.self, from: Data(json.utf8))
    }

    static func result(prefetchWindow: Range<Int>? = nil, prefetchedSteps: Int = 0) throws -> BenchmarkResult {
        let mm = try fc1Shape()
        let kernels = [
            StepBenchmark.KernelTiming(index: 0, label: "gather_batch", flops: 100_352, seconds: 10e-6, fastestSeconds: 8e-6, matmul: nil),
            StepBenchmark.KernelTiming(
                index: 1, label: "fc1.linear+bias+relu", flops: mm.flops, seconds: 64e-6, fastestSeconds: 60e-6, matmul: mm),
        ]
        let report = StepBenchmark.Report(
            warmupSteps: 10, measuredSteps: 20, batchSize: 64, stepSeconds: 100e-6, fastestStepSeconds: 90e-6, meanStepSeconds: 105e-6, kernels: kernels,
            flopsPerStep: 29_000_000, epochSamples: 60_000, stepsPerEpoch: 938, prefetchWindow: prefetchWindow,
            prefetchedSteps: prefetchedSteps)
        return BenchmarkResult(
            specName: "mnist_mlp", kernelSet: "avx512", threads: 2, cpu: "test CPU", data: "synthetic", report: report,
            peaks: [
                MatmulPeak(size: 512, threads: 1, seconds: 2 * 512 * 512 * 512 / 200e9),
                MatmulPeak(size: 512, threads: 2, seconds: 2 * 512 * 512 * 512 / 400e9),
            ])
    }

    func testMatrixProductsAreComparedWithThePeakForTheirThreadCount() throws {
        let result = try Self.result()
        let fc1 = result.report.kernels[1]
        XCTAssertEqual(fc1.gflops, 12_845_056 / 64e-6 / 1e9, accuracy: 1e-9)
        XCTAssertEqual(try XCTUnwrap(result.percentOfPeak(fc1)), 100 * fc1.gflops / 400, accuracy: 1e-6)
        XCTAssertNil(result.percentOfPeak(result.report.kernels[0]))
        XCTAssertEqual(result.share(fc1), 64, accuracy: 1e-9)
        XCTAssertEqual(result.report.epochSeconds, 938 * 100e-6, accuracy: 1e-12)
    }

    func testTextHasARowPerKernelAndTheEpochTime() throws {
        let text = try Self.result().text
        let lines = text.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.contains { $0.hasPrefix("gather_batch ") })
        let fc1 = lines.first { $0.hasPrefix("fc1.linear+bias+relu") }
        XCTAssertNotNil(fc1)
        XCTAssertTrue(fc1?.contains("64x784x128") ?? false)
        XCTAssertTrue(fc1?.contains("50%") ?? false, fc1 ?? "")  // 200.7 GFLOP/s of a 400 GFLOP/s two-thread peak
        XCTAssertTrue(text.contains("epoch: 0.094 s (938 steps"), text)
        XCTAssertTrue(text.contains("200 GFLOP/s on 1 thread, 400 GFLOP/s on 2 threads"), text)
    }

    func testJSONCarriesEveryKernelAndTheDerivedRates() throws {
        let json = try Self.result().json
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let kernels = try XCTUnwrap(object["kernels"] as? [[String: Any]])
        XCTAssertEqual(kernels.count, 2)
        XCTAssertEqual(kernels[1]["label"] as? String, "fc1.linear+bias+relu")
        XCTAssertEqual(try XCTUnwrap(kernels[1]["percent_of_peak"] as? Double), 50.17, accuracy: 0.01)
        XCTAssertNil(kernels[0]["percent_of_peak"])
        XCTAssertEqual(try XCTUnwrap(object["epoch_seconds"] as? Double), 0.0938, accuracy: 1e-9)
        XCTAssertEqual(object["steps_per_epoch"] as? Int, 938)
        XCTAssertTrue(object["prefetch_window"] is NSNull)
        XCTAssertEqual(object["prefetched_steps"] as? Int, 0)
    }

    func testTextAndJSONNameTheKernelsTheGatherOverlaps() throws {
        let result = try Self.result(prefetchWindow: 1..<2, prefetchedSteps: 19)
        XCTAssertTrue(
            result.text.contains("during kernels 1-1 (fc1.linear+bias+relu ... fc1.linear+bias+relu, 64.0 us)"), result.text)
        XCTAssertTrue(result.text.contains("19 of 20 measured steps found their batch gathered"), result.text)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.json.utf8)) as? [String: Any])
        XCTAssertEqual(object["prefetch_window"] as? [Int], [1, 1])
        XCTAssertEqual(object["prefetched_steps"] as? Int, 19)
        XCTAssertFalse(try Self.result().text.contains("batch prefetch"))
    }

    func testTextAndJSONSayWhetherTheShiftedLayerSkipsZeroPixels() throws {
        var result = try Self.result()
        XCTAssertFalse(result.text.contains("pixels"))
        result.report.shiftedInput = .init(layer: "fc1", nonzeroFraction: 0.1912, skipsZeros: true)
        XCTAssertTrue(result.text.contains("fc1: 19.1% of the data's pixels are nonzero; its products loop over those"), result.text)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.json.utf8)) as? [String: Any])
        let shifted = try XCTUnwrap(object["shifted_input"] as? [String: Any])
        XCTAssertEqual(shifted["layer"] as? String, "fc1")
        XCTAssertEqual(shifted["skips_zeros"] as? Bool, true)
        XCTAssertEqual(try XCTUnwrap(shifted["nonzero_fraction"] as? Double), 0.1912, accuracy: 1e-12)
        result.report.shiftedInput?.skipsZeros = false
        XCTAssertTrue(result.text.contains("fc1: --disable-pass sparse-input, its products multiply every pixel"), result.text)
        // From the data: the tiny plan's first layer, and the synthetic images' share of nonzero bytes.
        let plan = try makePlan()
        let data = images()
        let benchmark = try StepBenchmark(plan: plan, kernels: kernels(for: plan.target.isa), pool: WorkerPool(threads: 1), data: data, seed: 3)
        let report = benchmark.run(warmupSteps: 1, measuredSteps: 2)
        XCTAssertEqual(report.shiftedInput?.layer, "fc1")
        XCTAssertEqual(report.shiftedInput?.nonzeroFraction, Double(data.images.filter { $0 != 0 }.count) / Double(data.images.count))
    }

    /// On two threads whole steps gather ahead and kernel-by-kernel steps do not; mixed in the
    /// benchmark's rounds they still train exactly as ordinary steps on one thread.
    func testPrefetchingWholeStepsAndKernelByKernelStepsTrainLikeOneThread() throws {
        let plan = try makePlan(threads: 2)
        XCTAssertNotNil(plan.batchPrefetch)
        let data = images(count: 400)
        let set = kernels(for: plan.target.isa)
        let benchmark = try StepBenchmark(plan: plan, kernels: set, pool: WorkerPool(threads: 2), data: data, seed: 3)
        let report = benchmark.run(warmupSteps: 3, measuredSteps: 20)
        XCTAssertEqual(report.prefetchWindow, plan.batchPrefetch?.overlaps)
        // The first round's 16 whole steps follow the warm-up's whole steps: each batch was gathered
        // ahead. The second round's 4 follow kernel-by-kernel steps: its first was not.
        XCTAssertEqual(report.prefetchedSteps, 16 + 3)
        let steps = benchmark.executor.optimizerSteps
        XCTAssertEqual(steps, 3 + 40)

        let reference = try ordinarySteps(steps, plan: try makePlan(threads: 1), data: data, order: benchmark.order)
        XCTAssertFalse(reference.prefetchesBatches)
        XCTAssertEqual(parameterBits(benchmark.executor), parameterBits(reference))
    }
}
