import Figures
import Files
import DataSources
import Execution
import Foundation
import KernelInterface
import Planner
import SpecParser

/// Everything `mlpc run` does between parsing flags and printing: load and verify the data, allocate the
/// arena, initialise, train epoch by epoch, evaluate, and keep the run directory up to date: run.json and
/// metrics.jsonl, a checkpoint after every epoch (and on interruption), and at the end the weights, the
/// model and the pictures.
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
    /// `metrics` as JSON lines, each made once: metrics.jsonl and the checkpoint repeat every epoch's
    /// line after every epoch, and encoding them all again each time made long runs quadratic.
    private(set) var metricLines: [String] = []
    /// Epochs trained and evaluated so far (more than 0 after resuming).
    public private(set) var completedEpochs = 0
    /// The part of epoch `completedEpochs + 1` done before an interruption, continued by `runEpoch`.
    public private(set) var partialEpoch: EpochProgress?
    let specSHA256: String
    let pool: WorkerPool
    let started = DispatchTime.now().uptimeNanoseconds
    /// Seconds the run spent in the sessions before this one (resumed runs).
    var secondsBefore: Double = 0

    /// The ranks of a data-parallel run (`plan.dataParallel`); only the first writes the run directory.
    public let ranks: (any RankGroup)?
    /// Whether this process writes the run directory: one process, or the first rank.
    public var writesFiles: Bool { ranks?.isFirst ?? true }

    public init(spec: Spec, plan: Plan, kernels: KernelSet, data: LoadedData, options: Options, ranks: (any RankGroup)? = nil) throws {
        self.spec = spec
        self.ranks = ranks
        self.plan = plan
        self.options = options
        self.kernels = kernels
        self.data = data
        pool = WorkerPool(threads: plan.target.threads)
        try checkDataset(data.train, fits: plan)
        try checkDataset(data.test, fits: plan)
        let executor = try StepExecutor(
            plan: plan, kernels: kernels, pool: pool, dropoutSeed: dropoutSeed(seed: options.seed, rank: ranks?.rank ?? 0))
        initializeParameters(plan, seed: options.seed, into: executor.parameters)
        trainer = Trainer(
            executor: executor, train: data.train, test: data.test, seed: options.seed, shuffle: plan.schedule.shuffle,
            dropLast: plan.schedule.dropLast, validationFraction: plan.schedule.validationFraction)
        trainer.rankGroup = ranks
        guard trainer.stepsPerEpoch > 0 else {
            throw RuntimeError.data(noTrainingStepReason(spec: spec, batchSize: plan.globalBatchSize, examples: trainer.trainingExamples))
        }
        if let error = oneRowBatchNormError(plan: plan, spec: spec, examples: trainer.trainingExamples, batchSize: plan.globalBatchSize) {
            throw RuntimeError.located(error.layer.location, "\(error.message); \(error.fix)")
        }
        specSHA256 = SHA256.hash(Array(spec.resolvedYAML.utf8)).hex
        record = RunRecord(
            mlpcVersion: options.mlpcVersion, status: "running", stopReason: nil, specPath: spec.path,
            specSHA256: specSHA256, specName: spec.name.value, dataDirectory: data.directory,
            dataSHA256: data.sha256, seed: options.seed, threads: plan.target.threads, kernels: "\(kernels.isa)",
            cpu: plan.target.cpuName, epochs: options.epochs, batchSize: plan.globalBatchSize, parameters: plan.parameterCount,
            arenaBytes: plan.arenaBytes, epochSeconds: [], epochMeanLoss: [], epochTestAccuracy: [], testAccuracy: nil,
            testAccuracyCI95: nil, totalSeconds: 0, startedAt: utcTimestamp(secondsSince1970: time(nil)))
        record.ranks = plan.dataParallel?.ranks
        if !data.train.classNames.isEmpty { record.classNames = data.train.classNames }
    }

    var runJSONPath: String { options.outputDirectory + "/run.json" }
    var metricsPath: String { options.outputDirectory + "/metrics.jsonl" }
    public var checkpointPath: String { options.outputDirectory + "/" + Checkpoint.fileName }
    public var weightsPath: String { options.outputDirectory + "/weights.safetensors" }
    public var modelPath: String { options.outputDirectory + "/model.safetensors" }

    /// The first epoch `runEpoch` should be called with: 1, or the one after the checkpoint's.
    public var nextEpoch: Int { completedEpochs + 1 }

    /// Continues from `checkpoint` (read against this run's plan): it must come from the same spec, seed,
    /// batch size and data. Parameters, moments, counters and the metrics so far are restored.
    /// `recordedSpecSHA256` is the SHA-256 of the run directory's spec.yaml, when this run's spec was read
    /// from it: the checkpoint must have been written with that spec. (This run's own resolved spec may
    /// differ from it in the data directory alone, when the data moved; the data's checksums must agree.)
    public func resume(from checkpoint: Checkpoint, path: String, recordedSpecSHA256: String? = nil) throws {
        var conflicts: [String] = []
        if let recordedSpecSHA256 {
            if checkpoint.specSHA256 != recordedSpecSHA256 {
                conflicts.append(
                    "its spec has SHA-256 \(checkpoint.specSHA256), the run directory's spec.yaml \(recordedSpecSHA256) (was spec.yaml edited?)")
            }
        } else if checkpoint.specSHA256 != specSHA256 {
            conflicts.append("its spec has SHA-256 \(checkpoint.specSHA256), this spec \(specSHA256)")
        }
        if checkpoint.seed != options.seed { conflicts.append("its seed is \(checkpoint.seed), this run's \(options.seed)") }
        if checkpoint.batchSize != plan.globalBatchSize {
            conflicts.append("its batch size is \(checkpoint.batchSize), this run's \(plan.globalBatchSize)")
        }
        if checkpoint.dataSHA256 != data.sha256 {
            conflicts.append("it was trained on data with other checksums than the files in \(data.directory)")
        }
        guard conflicts.isEmpty else {
            throw ModelFileError(path: path, reason: "cannot resume this run: " + conflicts.joined(separator: "; "))
        }
        try checkCounters(of: checkpoint, path: path)
        checkpoint.restore(into: trainer.executor)
        completedEpochs = checkpoint.completedEpochs
        partialEpoch = checkpoint.partialEpoch
        metrics = checkpoint.metrics
        metricLines = metrics.map { $0.jsonLine() }
        record.epochSeconds = metrics.map(\.seconds)
        record.epochMeanLoss = metrics.map(\.meanLoss)
        record.epochTestAccuracy = metrics.filter { $0.regression == nil }.map(\.testAccuracy)
        if metrics.contains(where: { $0.regression != nil }) { record.epochTestR2 = metrics.compactMap { $0.regression?.r2 } }
        // The record keeps the run's history: where it was started from, when, and its time so far. The
        // run's run.json was written last (after the checkpoint: the final files, or the interruption),
        // so its total counts, when it is the same run's.
        let recorded = recordedHistory()
        if var history = checkpoint.history ?? recorded {
            if let recorded, recorded.startedAt == history.startedAt {
                history.totalSeconds = max(history.totalSeconds, recorded.totalSeconds)
            }
            record.specPath = history.specPath
            record.startedAt = history.startedAt
            secondsBefore = history.totalSeconds
        }
    }

    /// The counters must describe a point this run's epochs can reach: a damaged or hand-edited checkpoint
    /// would otherwise continue from the wrong step, or with Adam's bias correction off.
    func checkCounters(of checkpoint: Checkpoint, path: String) throws {
        let steps = trainer.stepsPerEpoch
        let stepsDone = checkpoint.partialEpoch?.stepsDone ?? 0
        func damaged(_ reason: String) -> ModelFileError {
            ModelFileError(path: path, reason: "cannot resume this run: " + reason + " (the checkpoint is damaged or from another dataset)")
        }
        if let partial = checkpoint.partialEpoch {
            guard partial.stepsDone < steps else {
                throw damaged("it stopped after step \(partial.stepsDone) of epoch \(partial.epoch), but an epoch of this run has \(steps) steps")
            }
            let batch = plan.globalBatchSize
            guard partial.rowsSeen == partial.stepsDone * batch else {
                throw damaged("its epoch_rows is \(partial.rowsSeen), but \(partial.stepsDone) steps of batch \(batch) see \(partial.stepsDone * batch)")
            }
            guard partial.lossSum.isFinite, partial.lossSum >= 0, partial.lastLoss.isFinite else {
                throw damaged("its running loss of epoch \(partial.epoch) is not a finite non-negative number")
            }
        }
        let expected = checkpoint.completedEpochs * steps + stepsDone
        guard checkpoint.optimizerSteps == expected else {
            throw damaged(
                "its optimizer_steps is \(checkpoint.optimizerSteps), but \(checkpoint.completedEpochs) epochs of \(steps) steps and \(stepsDone) more make \(expected)")
        }
    }

    /// The history in the run directory's run.json, for checkpoints written before they recorded it.
    func recordedHistory() -> Checkpoint.RunHistory? {
        guard let data = FileManager.default.contents(atPath: runJSONPath),
            let old = try? JSONDecoder().decode(RunRecord.self, from: data), old.totalSeconds.isFinite, old.totalSeconds >= 0
        else { return nil }
        return Checkpoint.RunHistory(specPath: old.specPath, startedAt: old.startedAt, totalSeconds: old.totalSeconds)
    }

    /// Saves the state now: at an epoch boundary, or inside `partial`'s epoch after an interruption.
    public func writeCheckpoint(partial: EpochProgress? = nil) throws {
        guard writesFiles else { return }
        let checkpoint = Checkpoint(
            plan: plan, executor: trainer.executor, completedEpochs: completedEpochs, partialEpoch: partial, seed: options.seed,
            specSHA256: specSHA256, epochs: options.epochs, metrics: metrics, metricLines: metricLines, dataDirectory: data.directory,
            dataSHA256: data.sha256,
            history: .init(specPath: record.specPath, startedAt: record.startedAt, totalSeconds: runSeconds))
        try checkpoint.write(to: checkpointPath, mlpcVersion: options.mlpcVersion)
    }

    /// Creates the run directory and writes the initial run.json, the resolved spec (spec.yaml) and metrics.jsonl.
    public func prepareOutput() throws {
        guard writesFiles else { return }
        do {
            try FileManager.default.createDirectory(atPath: options.outputDirectory, withIntermediateDirectories: true)
        } catch {
            throw FileWriteError(path: options.outputDirectory, reason: "cannot create the run directory (\(error.localizedDescription))")
        }
        // The record first: from its first file on, the directory is recognisably an mlpc run's.
        try writeFileAtomically(record.json(), to: runJSONPath)
        try writeFileAtomically(spec.resolvedYAML, to: options.outputDirectory + "/spec.yaml")
        try writeFileAtomically(metricsText, to: metricsPath)
    }

    var metricsText: String { metricLines.map { $0 + "\n" }.joined() }

    /// Trains one epoch (1-based; `nextEpoch` first), evaluates, records it and writes the checkpoint.
    /// When training is interrupted the checkpoint holds the steps done so far, and the error is rethrown.
    public func runEpoch(_ epoch: Int) throws -> EpochMetrics {
        let resumed = partialEpoch?.epoch == epoch ? partialEpoch : nil
        let m: EpochMetrics
        do {
            m = try trainer.runEpoch(epoch, resuming: resumed)
        } catch RuntimeError.interrupted(let epoch, let step) {
            // The step in progress finished, so the state is exactly "after `step` steps of `epoch`".
            try writeCheckpoint(partial: trainer.progress)
            throw RuntimeError.interrupted(epoch: epoch, step: step)
        }
        partialEpoch = nil
        completedEpochs = epoch
        metricLines.append(m.jsonLine())
        metrics.append(m)
        record.epochSeconds.append(m.seconds)
        record.epochMeanLoss.append(m.meanLoss)
        if let regression = m.regression {
            record.epochTestR2 = (record.epochTestR2 ?? []) + [regression.r2]
        } else {
            record.epochTestAccuracy.append(m.testAccuracy)
        }
        record.totalSeconds = runSeconds
        if writesFiles {
            try writeFileAtomically(metricsText, to: metricsPath)
            try writeFileAtomically(record.json(), to: runJSONPath)
            try writeCheckpoint()
        }
        return m
    }

    /// Final evaluation on the test set (the last epoch's, when an epoch was trained), recorded with its
    /// 95% confidence interval; writes weights.safetensors, model.safetensors and the pictures.
    public func finish() throws -> Trainer.Evaluation {
        let evaluation = trainer.latestTestEvaluation ?? trainer.evaluate(data.test, indices: nil)
        guard writesFiles else { return evaluation }
        let parameters = UnsafePointer(trainer.executor.parameters)
        let modelState = trainer.executor.modelState.map { UnsafePointer($0) }
        try writeWeightsFile(plan: plan, parameters: parameters, modelState: modelState, to: weightsPath)
        // The model names the spec file the run was started from, also after a resume (which reads the
        // run directory's copy).
        var recordedSpec = spec
        recordedSpec.path = record.specPath
        try writeModelFile(
            spec: recordedSpec, plan: plan, parameters: parameters, modelState: modelState, dataDirectory: data.directory, mlpcVersion: options.mlpcVersion,
            to: modelPath, tablePreprocessing: data.tablePreprocessing)
        trainer.prepareOrder(epoch: 1)
        try writeRunPictures(
            directory: options.outputDirectory, train: data.train, firstBatch: Array(trainer.epochOrder.prefix(plan.globalBatchSize)),
            test: data.test, predictions: evaluation.predictions, metrics: metrics, confusion: evaluation.confusion,
            regression: evaluation.regression == nil ? nil : (evaluation.predictedValues, evaluation.trueValues),
            classNames: data.test.classNames)
        record.status = "completed"
        if let regression = evaluation.regression {
            record.testMAE = regression.mae
            record.testRMSE = regression.rmse
            record.testR2 = regression.r2
        } else {
            record.testAccuracy = evaluation.accuracy
            record.testAccuracyCI95 = accuracyConfidence95(correct: evaluation.correct, total: evaluation.total)
        }
        record.totalSeconds = runSeconds
        try writeFileAtomically(record.json(), to: runJSONPath)
        return evaluation
    }

    /// Records why the run stopped early; the caller reports the error.
    public func recordStop(status: String, reason: String) {
        guard writesFiles else { return }
        record.status = status
        record.stopReason = reason
        record.totalSeconds = runSeconds
        try? writeFileAtomically(record.json(), to: runJSONPath)
    }

    /// The run's seconds so far, over every session.
    var runSeconds: Double { secondsBefore + Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9 }
}

/// Dropout's seed on rank `rank`: the run's on the first rank (and in one process), a distinct stream
/// on each other rank, whose rows are other samples.
func dropoutSeed(seed: UInt64, rank: Int) -> UInt64 {
    (seed ^ 0xD0D0_D0D0) ^ (UInt64(rank) &* 0x9E37_79B9_7F4A_7C15)
}
