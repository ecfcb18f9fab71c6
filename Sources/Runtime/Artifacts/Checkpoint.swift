import Figures
import Files
import DataSources
import Execution
import Foundation
import Planner

// checkpoint.safetensors: everything a run needs to continue bit-identically. The tensors are the
// parameters (PyTorch names and shapes, as in weights.safetensors) and each optimizer moment under
// PyTorch's state names (`exp_avg.fc1.weight`, `exp_avg_sq.fc1.weight`, `momentum_buffer.fc1.weight`);
// the metadata holds the counters (epoch, step inside it, optimizer steps), the seed, the spec's
// SHA-256 and the metrics so far. Shuffling and dropout are pure functions of (seed, epoch) and (seed,
// optimizer step), so no generator state needs saving.
//
// A checkpoint is written at the end of every epoch, and when training is interrupted, after the step
// in progress: then it records the steps done inside the epoch (and the epoch's running loss sums), and
// resuming continues that epoch from the next step.

/// A training run's state as saved in (or read from) checkpoint.safetensors.
public struct Checkpoint {
    public static let fileName = "checkpoint.safetensors"

    /// Epochs finished (trained and evaluated).
    public var completedEpochs: Int
    /// The epoch after `completedEpochs` when it stopped part way, with its running sums; nil at an epoch boundary.
    public var partialEpoch: EpochProgress?
    public var optimizerSteps: Int
    public var seed: UInt64
    public var specSHA256: String
    public var batchSize: Int
    /// The number of epochs the run was asked for.
    public var epochs: Int
    public var metrics: [EpochMetrics]
    /// `metrics` as JSON, one line each, when the caller has them already (a run keeps them).
    var metricLines: [String]?
    public var dataDirectory: String
    public var dataSHA256: [String: String]
    /// The run's history, so a resumed run.json keeps it: the spec file the run was started from,
    /// when it started, and its seconds so far over all sessions. Nil in checkpoints written before these
    /// were recorded.
    public var history: RunHistory?
    /// The plan's options (passes turned off), so that a resumed run plans the same kernels.
    public var planOptions = PlanOptions()
    /// Parameters and moments as tensors (see the file comment).
    public var tensors: SafetensorsFile

    /// What a resumed run.json carries over from the sessions before.
    public struct RunHistory: Equatable, Sendable {
        public var specPath: String
        public var startedAt: String
        public var totalSeconds: Double

        public init(specPath: String, startedAt: String, totalSeconds: Double) {
            self.specPath = specPath
            self.startedAt = startedAt
            self.totalSeconds = totalSeconds
        }
    }

    enum Key {
        static let epoch = "epoch"
        static let stepInEpoch = "step_in_epoch"
        static let epochLossSum = "epoch_loss_sum_bits"
        static let epochRows = "epoch_rows"
        static let epochLastLoss = "epoch_last_loss_bits"
        static let optimizerSteps = "optimizer_steps"
        static let seed = "seed"
        static let batchSize = "batch_size"
        static let epochs = "epochs"
        static let metrics = "metrics"
        static let dataSHA256 = "data_sha256"
        static let specPath = "spec_path"
        static let startedAt = "started_at"
        static let totalSeconds = "total_seconds"
        /// The ranks of a data-parallel run (absent: one process).
        static let ranks = "ranks"
    }

    /// Captures the executor's parameters and moments with the counters given.
    public init(
        plan: Plan, executor: StepExecutor, completedEpochs: Int, partialEpoch: EpochProgress?, seed: UInt64,
        specSHA256: String, epochs: Int, metrics: [EpochMetrics], metricLines: [String]? = nil, dataDirectory: String,
        dataSHA256: [String: String], history: RunHistory? = nil
    ) {
        var tensors = stateDictTensors(plan: plan, block: executor.parameters, modelState: executor.modelState.map { UnsafePointer($0) })
        for (index, name) in plan.optimizer.stateNames.enumerated() {
            tensors += stateDictTensors(plan: plan, block: executor.stateBlock(index), prefix: name + ".")
        }
        self.completedEpochs = completedEpochs
        self.partialEpoch = partialEpoch
        self.optimizerSteps = executor.optimizerSteps
        self.seed = seed
        self.specSHA256 = specSHA256
        self.batchSize = plan.globalBatchSize
        self.epochs = epochs
        self.metrics = metrics
        self.metricLines = metricLines
        self.dataDirectory = dataDirectory
        self.dataSHA256 = dataSHA256
        self.history = history
        self.planOptions = plan.options
        self.tensors = SafetensorsFile(tensors: tensors)
    }

    /// Writes the checkpoint atomically (a reader, or a crash, sees the old file or the whole new one).
    public func write(to path: String, mlpcVersion: String) throws {
        var metadata: [String: String] = [
            ArtifactMetadataKey.format: ArtifactMetadataKey.checkpointFormat,
            ArtifactMetadataKey.mlpcVersion: mlpcVersion,
            ArtifactMetadataKey.specSHA256: specSHA256,
            ArtifactMetadataKey.dataDirectory: dataDirectory,
            Key.epoch: String(completedEpochs),
            Key.optimizerSteps: String(optimizerSteps),
            Key.seed: String(seed),
            Key.batchSize: String(batchSize),
            Key.epochs: String(epochs),
            Key.metrics: "[" + (metricLines ?? metrics.map { $0.jsonLine() }).joined(separator: ",") + "]",
            Key.dataSHA256: jsonObject(dataSHA256),
        ]
        metadata.merge(ArtifactMetadataKey.disabledPassesEntry(planOptions)) { $1 }
        if planOptions.ranks > 1 { metadata[Key.ranks] = String(planOptions.ranks) }
        if let history {
            metadata[Key.specPath] = history.specPath
            metadata[Key.startedAt] = history.startedAt
            metadata[Key.totalSeconds] = String(history.totalSeconds)
        }
        if let partial = partialEpoch {
            metadata[Key.stepInEpoch] = String(partial.stepsDone)
            // Bit patterns, so the resumed epoch's mean loss is the uninterrupted one to the last bit.
            metadata[Key.epochLossSum] = String(partial.lossSum.bitPattern, radix: 16)
            metadata[Key.epochRows] = String(partial.rowsSeen)
            metadata[Key.epochLastLoss] = String(partial.lastLoss.bitPattern, radix: 16)
        } else {
            metadata[Key.stepInEpoch] = "0"
        }
        var file = tensors
        file.metadata = metadata
        try file.write(to: path)
    }

    /// What a run needs to know before it can plan the spec again: the seed, batch size, epochs and data
    /// directory the checkpoint was made with, and how far it got (epochs completed, steps into the next).
    public struct Settings: Equatable, Sendable {
        public var seed: UInt64
        public var batchSize: Int
        public var epochs: Int
        public var dataDirectory: String
        public var completedEpochs: Int
        public var stepInEpoch: Int
        /// The options the run was planned with (`--disable-pass`).
        public var planOptions = PlanOptions()

        /// The fewest epochs a resumed run may be asked for: those completed, or the epoch it stopped in.
        public var minimumEpochs: Int { stepInEpoch > 0 ? completedEpochs + 1 : completedEpochs }

        /// Why the run cannot be resumed to end after `epochs` epochs (its files would then describe a
        /// model from later than their last epoch), or nil when it can.
        public func shortfall(epochs: Int) -> String? {
            guard epochs < minimumEpochs else { return nil }
            let reached =
                stepInEpoch > 0
                ? "it stopped in epoch \(completedEpochs + 1), after step \(stepInEpoch)"
                : "it has completed \(completedEpochs) epoch\(completedEpochs == 1 ? "" : "s")"
            return "\(reached); give --epochs \(minimumEpochs) or more"
        }
    }

    /// Reads only the settings from the checkpoint's metadata.
    public static func settings(path: String) throws -> Settings {
        let file = try readSafetensors(path: path, what: "checkpoint")
        guard file.metadata[ArtifactMetadataKey.format] == ArtifactMetadataKey.checkpointFormat else {
            throw ModelFileError(path: path, reason: "is not an mlpc checkpoint (its metadata has no format \"mlpc.checkpoint\")")
        }
        // Each key checked on its own, so the message names the one that is missing or malformed.
        func entry<T>(_ key: String, _ expected: String, _ parse: (String) -> T?) throws -> T {
            guard let text = file.metadata[key] else {
                throw ModelFileError(path: path, reason: "the checkpoint metadata lacks '\(key)'")
            }
            guard let value = parse(text) else {
                throw ModelFileError(
                    path: path, reason: "checkpoint metadata '\(key)' is \"\(escapedForMessage(text))\", expected \(expected)")
            }
            return value
        }
        let seed = try entry(Key.seed, "an unsigned integer") { UInt64($0) }
        let batch = try entry(Key.batchSize, "a positive integer") { Int($0).flatMap { $0 > 0 ? $0 : nil } }
        let epochs = try entry(Key.epochs, "a positive integer") { Int($0).flatMap { $0 > 0 ? $0 : nil } }
        let directory = try entry(ArtifactMetadataKey.dataDirectory, "a directory") { $0 }
        let completed = try entry(Key.epoch, "a non-negative integer") { Int($0).flatMap { $0 >= 0 ? $0 : nil } }
        let step = try entry(Key.stepInEpoch, "a non-negative integer") { Int($0).flatMap { $0 >= 0 ? $0 : nil } }
        var settings = Settings(
            seed: seed, batchSize: batch, epochs: epochs, dataDirectory: directory, completedEpochs: completed, stepInEpoch: step)
        settings.planOptions = try ArtifactMetadataKey.planOptions(file.metadata, path: path)
        if file.metadata[Key.ranks] != nil {
            settings.planOptions.ranks = try entry(Key.ranks, "a number of ranks above 1") { Int($0).flatMap { $0 > 1 ? $0 : nil } }
        }
        return settings
    }

    /// Reads and checks a checkpoint: every counter present and well-formed, and the tensors exactly those
    /// of `plan` (parameters and moments, shapes, finite). Errors name the file.
    public static func read(path: String, plan: Plan) throws -> Checkpoint {
        let file = try readSafetensors(path: path, what: "checkpoint")
        let metadata = file.metadata
        guard metadata[ArtifactMetadataKey.format] == ArtifactMetadataKey.checkpointFormat else {
            throw ModelFileError(path: path, reason: "is not an mlpc checkpoint (its metadata has no format \"mlpc.checkpoint\")")
        }
        func value(_ key: String) throws -> String {
            guard let text = metadata[key] else { throw ModelFileError(path: path, reason: "the checkpoint metadata lacks '\(key)'") }
            return text
        }
        func integer(_ key: String) throws -> Int {
            let text = try value(key)
            guard let number = Int(text), number >= 0 else {
                throw ModelFileError(path: path, reason: "checkpoint metadata '\(key)' is \"\(text)\", expected a non-negative integer")
            }
            return number
        }
        func bits(_ key: String) throws -> UInt64 {
            let text = try value(key)
            guard let number = UInt64(text, radix: 16) else {
                throw ModelFileError(path: path, reason: "checkpoint metadata '\(key)' is \"\(text)\", expected hexadecimal bits")
            }
            return number
        }
        let completed = try integer(Key.epoch)
        let step = try integer(Key.stepInEpoch)
        var partial: EpochProgress?
        if step > 0 {
            let lastLossBits = try bits(Key.epochLastLoss)
            guard lastLossBits <= UInt64(UInt32.max) else {
                throw ModelFileError(path: path, reason: "checkpoint metadata '\(Key.epochLastLoss)' does not fit a float")
            }
            partial = EpochProgress(
                epoch: completed + 1, stepsDone: step, lossSum: Double(bitPattern: try bits(Key.epochLossSum)),
                rowsSeen: try integer(Key.epochRows), lastLoss: Float(bitPattern: UInt32(lastLossBits)))
        }
        let seedText = try value(Key.seed)
        guard let seed = UInt64(seedText) else {
            throw ModelFileError(path: path, reason: "checkpoint metadata 'seed' is \"\(seedText)\", expected an unsigned integer")
        }
        let metrics: [EpochMetrics]
        let dataSums: [String: String]
        do {
            metrics = try JSONDecoder().decode([EpochMetrics].self, from: Data(try value(Key.metrics).utf8))
            dataSums = try JSONDecoder().decode([String: String].self, from: Data(try value(Key.dataSHA256).utf8))
        } catch let error as ModelFileError {
            throw error
        } catch {
            // Not Swift's DecodingError text: it describes coding paths, not the file.
            throw ModelFileError(
                path: path, reason: "checkpoint metadata 'metrics' or 'data_sha256' is not the JSON mlpc writes (the checkpoint is damaged)")
        }
        guard metrics.count == completed else {
            throw ModelFileError(path: path, reason: "the checkpoint records \(completed) epochs but metrics for \(metrics.count)")
        }
        try checkStateDict(file, path: path, plan: plan, prefixes: [""] + plan.optimizer.stateNames.map { $0 + "." })
        try requireNonNegativeSecondMoments(file, path: path, plan: plan)
        var history: RunHistory?
        if let specPath = metadata[Key.specPath], let startedAt = metadata[Key.startedAt], let secondsText = metadata[Key.totalSeconds] {
            guard let seconds = Double(secondsText), seconds.isFinite, seconds >= 0 else {
                throw ModelFileError(
                    path: path, reason: "checkpoint metadata '\(Key.totalSeconds)' is \"\(secondsText)\", expected a non-negative number")
            }
            history = RunHistory(specPath: specPath, startedAt: startedAt, totalSeconds: seconds)
        }
        var checkpoint = Checkpoint(
            completedEpochs: completed, partialEpoch: partial, optimizerSteps: try integer(Key.optimizerSteps), seed: seed,
            specSHA256: try value(ArtifactMetadataKey.specSHA256), batchSize: try integer(Key.batchSize),
            epochs: try integer(Key.epochs), metrics: metrics, dataDirectory: try value(ArtifactMetadataKey.dataDirectory),
            dataSHA256: dataSums, history: history, tensors: file)
        checkpoint.tensors.metadata = [:]
        return checkpoint
    }

    init(
        completedEpochs: Int, partialEpoch: EpochProgress?, optimizerSteps: Int, seed: UInt64, specSHA256: String, batchSize: Int,
        epochs: Int, metrics: [EpochMetrics], dataDirectory: String, dataSHA256: [String: String], history: RunHistory?,
        tensors: SafetensorsFile
    ) {
        self.completedEpochs = completedEpochs
        self.partialEpoch = partialEpoch
        self.optimizerSteps = optimizerSteps
        self.seed = seed
        self.specSHA256 = specSHA256
        self.batchSize = batchSize
        self.epochs = epochs
        self.metrics = metrics
        self.dataDirectory = dataDirectory
        self.dataSHA256 = dataSHA256
        self.history = history
        self.tensors = tensors
    }

    /// Puts the parameters, moments and optimizer step count into `executor` (whose plan the
    /// checkpoint was read against).
    public func restore(into executor: StepExecutor) {
        let plan = executor.plan
        fillBlock(tensors, plan: plan, prefix: "", into: executor.parameters, modelState: executor.modelState)
        for (index, name) in plan.optimizer.stateNames.enumerated() {
            fillBlock(tensors, plan: plan, prefix: name + ".", into: executor.stateBlock(index))
        }
        executor.optimizerSteps = optimizerSteps
    }
}

/// Adam's second moments are running means of squares: a negative one can only come from a damaged
/// file, and would otherwise surface later as a diverged run.
private func requireNonNegativeSecondMoments(_ file: SafetensorsFile, path: String, plan: Plan) throws {
    guard plan.optimizer.stateNames.contains("exp_avg_sq") else { return }
    for parameter in plan.parameters {
        let name = "exp_avg_sq." + parameter.name
        guard let tensor = file.tensor(named: name), let index = tensor.values.firstIndex(where: { $0 < 0 }) else { continue }
        throw ModelFileError(
            path: path,
            reason: "tensor '\(name)' holds \(tensor.values[index]) at element \(index): a second moment cannot be negative (the checkpoint is damaged)")
    }
}

private func jsonObject(_ values: [String: String]) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return String(decoding: (try? encoder.encode(values)) ?? Data("{}".utf8), as: UTF8.self)
}
