import Foundation
import KernelInterface
import Planner
import SpecParser

/// Everything `mlpc run` does between parsing flags and printing: load and verify the data, allocate the
/// arena, initialise, train epoch by epoch, evaluate, and keep the run directory up to date.
public final class TrainingRun {
    public struct Options {
        public var epochs: Int
        public var seed: UInt64
        public var outputDirectory: String
        public var mlpcVersion: String

        public init(epochs: Int, seed: UInt64, outputDirectory: String, mlpcVersion: String) {
            self.epochs = epochs
            self.seed = seed
            self.outputDirectory = outputDirectory
            self.mlpcVersion = mlpcVersion
        }
    }

    public let spec: Spec
    public let plan: Plan
    public let options: Options
    public let kernels: KernelSet
    public let data: LoadedData
    public let trainer: Trainer
    public private(set) var record: RunRecord
    public private(set) var metrics: [EpochMetrics] = []
    let pool: WorkerPool
    let started = DispatchTime.now().uptimeNanoseconds

    public init(spec: Spec, plan: Plan, kernels: KernelSet, data: LoadedData, options: Options) throws {
        self.spec = spec
        self.plan = plan
        self.options = options
        self.kernels = kernels
        self.data = data
        pool = WorkerPool(threads: plan.target.threads)
        let executor = try StepExecutor(plan: plan, kernels: kernels, pool: pool, dropoutSeed: options.seed ^ 0xD0D0_D0D0)
        initializeParameters(plan, seed: options.seed, into: executor.parameters)
        trainer = Trainer(
            executor: executor, train: data.train, test: data.test, seed: options.seed, shuffle: spec.training.shuffle.value,
            dropLast: spec.training.dropLast.value, validationFraction: spec.data.validationFraction.value)
        let formatter = ISO8601DateFormatter()
        record = RunRecord(
            mlpcVersion: options.mlpcVersion, status: "running", stopReason: nil, specPath: spec.path,
            specSHA256: SHA256.hash(Array(spec.sourceText.utf8)).hex, specName: spec.name.value, dataDirectory: data.directory,
            dataSHA256: data.sha256, seed: options.seed, threads: plan.target.threads, kernels: "\(kernels.isa)",
            cpu: plan.target.cpuName, epochs: options.epochs, batchSize: plan.batchSize, parameters: plan.parameterCount,
            arenaBytes: plan.arenaBytes, epochSeconds: [], epochMeanLoss: [], epochTestAccuracy: [], testAccuracy: nil,
            testAccuracyCI95: nil, totalSeconds: 0, startedAt: formatter.string(from: Date()))
    }

    var runJSONPath: String { options.outputDirectory + "/run.json" }
    var metricsPath: String { options.outputDirectory + "/metrics.jsonl" }

    /// Creates the run directory and writes the spec copy and the initial run.json.
    public func prepareOutput() throws {
        do {
            try FileManager.default.createDirectory(atPath: options.outputDirectory, withIntermediateDirectories: true)
        } catch {
            throw FileWriteError(path: options.outputDirectory, reason: "cannot create the run directory (\(error.localizedDescription))")
        }
        try writeFileAtomically(spec.sourceText, to: options.outputDirectory + "/spec.yaml")
        try writeFileAtomically("", to: metricsPath)
        try writeFileAtomically(record.json(), to: runJSONPath)
    }

    /// Trains one epoch (1-based), evaluates, and records it.
    public func runEpoch(_ epoch: Int) throws -> EpochMetrics {
        let m = try trainer.runEpoch(epoch)
        metrics.append(m)
        record.epochSeconds.append(m.seconds)
        record.epochMeanLoss.append(m.meanLoss)
        record.epochTestAccuracy.append(m.testAccuracy)
        record.totalSeconds = elapsed
        try writeFileAtomically(metrics.map { $0.jsonLine() }.joined(separator: "\n") + "\n", to: metricsPath)
        try writeFileAtomically(record.json(), to: runJSONPath)
        return m
    }

    /// Final evaluation on the test set, recorded with its 95% confidence interval.
    public func finish() throws -> Trainer.Evaluation {
        let evaluation = trainer.evaluate(data.test, indices: nil)
        record.status = "completed"
        record.testAccuracy = evaluation.accuracy
        record.testAccuracyCI95 = accuracyConfidence95(correct: evaluation.correct, total: evaluation.total)
        record.totalSeconds = elapsed
        try writeFileAtomically(record.json(), to: runJSONPath)
        return evaluation
    }

    /// Records why the run stopped early; the caller reports the error.
    public func recordStop(status: String, reason: String) {
        record.status = status
        record.stopReason = reason
        record.totalSeconds = elapsed
        try? writeFileAtomically(record.json(), to: runJSONPath)
    }

    var elapsed: Double { Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9 }
}
