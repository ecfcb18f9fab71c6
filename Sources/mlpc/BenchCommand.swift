import ArgumentParser
import Foundation
import Planner
import Execution
import DataSources
import Files
import Figures
import Runtime
import SpecParser

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time the steady-state training step of a spec and each kernel of its plan.",
        discussion: """
            After a warm-up, prints the median time of a whole training step and of every kernel in it (microseconds, \
            GFLOP/s, share of the step), the matrix products' rate against this kernel set's rate on a large square \
            product, and the epoch time that step implies. Batches come from the spec's training images (nothing is \
            downloaded); random images of the same shape are timed with --synthetic, or when the spec's own data \
            directory has no dataset yet. Damaged data, or a --data-dir without the files, is an error.
            Exit status: 0 measured, 1 invalid spec or data, 2 unusable arguments or path.
            """
    )

    @OptionGroup var options: SpecOptions

    @Option(parsing: .unconditional, help: "Worker threads (default: the spec's training.threads, else all cores).")
    var threads: Int?

    @Option(name: .customLong("batch-size"), parsing: .unconditional, help: "Batch size (default: the spec's training.batch_size).")
    var batchSize: Int?

    @Option(parsing: .unconditional, help: "Whole steps run before measuring.")
    var warmup = 100

    @Option(parsing: .unconditional, help: "Steps measured: this many whole steps and as many timed kernel by kernel.")
    var steps = 400

    @Flag(help: "Use random images even when the dataset is on disk.")
    var synthetic = false

    @Option(
        help: ArgumentHelp(
            "Start from the parameters in this weights or model file (a run's weights.safetensors) instead of fresh ones.",
            discussion: "A trained network's step differs from a new one's: many of its ReLU units no longer fire, and their work is skipped."))
    var weights: String?

    @OptionGroup var passes: PassOptions

    @Option(help: "Output format: text or json.")
    var format: TextOrJSONFormat = .text

    func validate() throws {
        if let threads, threads < 1 || threads > 1024 { throw ValidationError("--threads must be between 1 and 1024") }
        if let batchSize, batchSize < 1 || batchSize > 1 << 20 { throw ValidationError("--batch-size must be between 1 and 1048576") }
        if warmup < 0 || warmup > 1_000_000 { throw ValidationError("--warmup must be between 0 and 1000000") }
        if steps < 1 || steps > 1_000_000 { throw ValidationError("--steps must be between 1 and 1000000") }
        if format == .dot { throw ValidationError("bench prints text or json") }
        if weights?.isEmpty == true { throw ValidationError("--weights is empty") }
    }

    func run() throws {
        let checked = try checkSpec(
            options, threads: threads, format: format.outputFormat, probeData: false, batchSize: batchSize,
            planOptions: passes.planOptions)
        let plan = checked.plan
        let kernels = try selectedKernels()
        // A table spec's rows were loaded while checking it: the benchmark steps through them.
        let (data, source): (any Dataset, String) = try checked.table.map {
            ($0.data.train, "\($0.data.train.origin) (\(grouped($0.data.train.count)) training rows)")
        } ?? benchmarkData(spec: checked.spec, plan: plan)
        let pool = WorkerPool(threads: plan.target.threads)
        let benchmark: StepBenchmark
        do {
            benchmark = try StepBenchmark(plan: plan, kernels: kernels, pool: pool, data: data, seed: checked.spec.seed.value)
        } catch {
            throw CommandFailure.invalid("mlpc: error: \(error)")
        }
        if let weights {
            do {
                try loadParameters(path: weights, plan: plan, into: benchmark.executor)
            } catch {
                throw commandFailure(for: error)
            }
        }
        let report = benchmark.run(warmupSteps: warmup, measuredSteps: steps)
        var peakThreads = [1]
        if plan.target.threads > 1 { peakThreads.append(plan.target.threads) }
        let peaks = peakThreads.map { MatmulPeak.measure(kernels: kernels, pool: pool, threads: $0, target: plan.target) }
        let result = BenchmarkResult(
            specName: plan.specName, kernelSet: "\(kernels.isa)", threads: plan.target.threads, cpu: plan.target.cpuName,
            data: source, report: report, peaks: peaks)
        print(format == .json ? result.json : result.text, terminator: "")
    }

    /// The spec's training images when all of its dataset is on disk, else random images of the input shape
    /// (as many as MNIST's training set, so the epoch estimate has MNIST's length). Data that is there but
    /// damaged, or missing from a directory named with --data-dir or $MLPC_DATA_DIR, is an error: timing
    /// random images instead would be a silent substitute for what was asked.
    func benchmarkData(spec: Spec, plan: Plan) throws -> (LabeledImages, String) {
        let directory = plan.data.directory
        let probe = probeDataset(directory: directory)
        if !synthetic, let problem = probe.problems.first {
            var missingOnly = true
            for problem in probe.problems {
                if case .missingFiles = problem { continue }
                missingOnly = false
            }
            if !missingOnly || options.dataDirectoryOverride != nil {
                throw CommandFailure.invalid("mlpc: error: \(problem)\n(pass --synthetic to time random images instead)")
            }
        }
        if !synthetic && probe.isUsable {
            do {
                let train = try loadDatasetSplit(directory: directory, split: .train, classCount: plan.classes, inputShape: plan.inputShape)
                return (train, "\(directory) (\(grouped(train.count)) training images)")
            } catch {
                throw CommandFailure.invalid("mlpc: error: \(error)")
            }
        }
        let count = 60_000
        let images = LabeledImages.synthetic(count: count, imageShape: plan.inputShape, classes: plan.classes, seed: spec.seed.value)
        return (images, "synthetic (\(grouped(count)) random images)")
    }
}
