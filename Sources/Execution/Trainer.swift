import Files
import DataSources
import Foundation
import Planner
import SpecParser

/// What one epoch did; one line of metrics.jsonl.
public struct EpochMetrics: Codable, Equatable {
    public var epoch: Int
    /// The loss of the epoch's last batch, as the PyTorch tutorial prints it.
    public var lastLoss: Double
    /// Mean over the epoch's batches, each weighted by its rows.
    public var meanLoss: Double
    public var testAccuracy: Double
    public var validationAccuracy: Double?
    public var seconds: Double
    public var trainSeconds: Double
    public var samplesPerSecond: Double
    /// A data-parallel run's mean seconds per step in the gradient allreduce (waiting for the slowest
    /// rank included); nil for one process.
    public var allreduceSecondsPerStep: Double? = nil
    /// A regressor's test metrics (then `testAccuracy` is not written) and its validation R².
    public var regression: RegressionMetrics? = nil
    public var validationR2: Double? = nil

    enum CodingKeys: String, CodingKey {
        case epoch, lastLoss = "last_loss", meanLoss = "mean_loss", testAccuracy = "test_accuracy",
            validationAccuracy = "validation_accuracy", seconds, trainSeconds = "train_seconds",
            samplesPerSecond = "samples_per_second", testMAE = "test_mae", testRMSE = "test_rmse", testR2 = "test_r2",
            validationR2 = "validation_r2", allreduceSecondsPerStep = "allreduce_seconds_per_step"
    }

    public init(
        epoch: Int, lastLoss: Double, meanLoss: Double, testAccuracy: Double, validationAccuracy: Double?, seconds: Double,
        trainSeconds: Double, samplesPerSecond: Double, regression: RegressionMetrics? = nil, validationR2: Double? = nil
    ) {
        self.epoch = epoch
        self.lastLoss = lastLoss
        self.meanLoss = meanLoss
        self.testAccuracy = testAccuracy
        self.validationAccuracy = validationAccuracy
        self.seconds = seconds
        self.trainSeconds = trainSeconds
        self.samplesPerSecond = samplesPerSecond
        self.regression = regression
        self.validationR2 = validationR2
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        epoch = try c.decode(Int.self, forKey: .epoch)
        lastLoss = try c.decode(Double.self, forKey: .lastLoss)
        meanLoss = try c.decode(Double.self, forKey: .meanLoss)
        validationAccuracy = try c.decodeIfPresent(Double.self, forKey: .validationAccuracy)
        seconds = try c.decode(Double.self, forKey: .seconds)
        trainSeconds = try c.decode(Double.self, forKey: .trainSeconds)
        samplesPerSecond = try c.decode(Double.self, forKey: .samplesPerSecond)
        validationR2 = try c.decodeIfPresent(Double.self, forKey: .validationR2)
        allreduceSecondsPerStep = try c.decodeIfPresent(Double.self, forKey: .allreduceSecondsPerStep)
        if let r2 = try c.decodeIfPresent(Double.self, forKey: .testR2) {
            regression = RegressionMetrics(
                mae: try c.decode(Double.self, forKey: .testMAE), rmse: try c.decode(Double.self, forKey: .testRMSE), r2: r2)
            testAccuracy = 0
        } else {
            testAccuracy = try c.decode(Double.self, forKey: .testAccuracy)
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(epoch, forKey: .epoch)
        try c.encode(lastLoss, forKey: .lastLoss)
        try c.encode(meanLoss, forKey: .meanLoss)
        if let regression {
            try c.encode(regression.mae, forKey: .testMAE)
            try c.encode(regression.rmse, forKey: .testRMSE)
            try c.encode(regression.r2, forKey: .testR2)
        } else {
            try c.encode(testAccuracy, forKey: .testAccuracy)
        }
        try c.encodeIfPresent(validationAccuracy, forKey: .validationAccuracy)
        try c.encodeIfPresent(validationR2, forKey: .validationR2)
        try c.encode(seconds, forKey: .seconds)
        try c.encode(trainSeconds, forKey: .trainSeconds)
        try c.encode(samplesPerSecond, forKey: .samplesPerSecond)
        try c.encodeIfPresent(allreduceSecondsPerStep, forKey: .allreduceSecondsPerStep)
    }
}

/// A regressor's errors in the target's own units (the mean over target columns), and R² (1 - the
/// residual sum of squares over the total, per column, averaged: scikit-learn's `r2_score`).
public struct RegressionMetrics: Codable, Equatable, Sendable {
    public var mae: Double
    public var rmse: Double
    public var r2: Double

    public init(mae: Double, rmse: Double, r2: Double) {
        self.mae = mae
        self.rmse = rmse
        self.r2 = r2
    }
}

/// Where training stands inside an epoch: enough to continue it exactly where it stopped (the order of
/// an epoch and dropout are functions of the seed, the epoch and the optimizer step, so nothing else is
/// needed besides the parameters and moments).
public struct EpochProgress: Equatable, Sendable {
    public var epoch: Int
    /// Steps of `epoch` already taken.
    public var stepsDone: Int
    public var lossSum: Double
    public var rowsSeen: Int
    public var lastLoss: Float

    public init(epoch: Int, stepsDone: Int, lossSum: Double, rowsSeen: Int, lastLoss: Float) {
        self.epoch = epoch
        self.stepsDone = stepsDone
        self.lossSum = lossSum
        self.rowsSeen = rowsSeen
        self.lastLoss = lastLoss
    }
}

/// Trains a plan on data: shuffles each epoch from the seed, steps through batches, evaluates.
public final class Trainer {
    public let executor: StepExecutor
    public let plan: Plan
    let train: any Dataset
    let test: any Dataset
    let seed: UInt64
    let shuffle: Bool
    let dropLast: Bool
    /// Indices of the training rows used for training (the rest are held out for validation).
    var trainIndices: [Int32]
    var validationIndices: [Int32]
    package var epochOrder: [Int32]
    var evalIndices: [Int32]
    /// Set from a signal handler: finish the current step, then stop.
    public var stopRequested: () -> Bool = { false }
    public var onStep: (_ step: Int, _ steps: Int) -> Void = { _, _ in }
    /// Updated after every step, so an interrupted epoch can be checkpointed and continued.
    public internal(set) var progress = EpochProgress(epoch: 0, stepsDone: 0, lossSum: 0, rowsSeen: 0, lastLoss: 0)
    /// The test-set evaluation that ended the last epoch, while the parameters are still the ones it
    /// saw (starting an epoch clears it): a run's final evaluation reuses it rather than repeating it.
    public private(set) var latestTestEvaluation: Evaluation?
    /// The ranks this process trains with when the plan is data-parallel (`DataParallelTraining.swift`).
    public var rankGroup: (any RankGroup)?
    /// Time in the step's allreduce during the current epoch, and its steps.
    var allreduceTime = (nanoseconds: UInt64(0), steps: 0)

    public init(
        executor: StepExecutor, train: any Dataset, test: any Dataset, seed: UInt64, shuffle: Bool, dropLast: Bool,
        validationFraction: Double
    ) {
        self.executor = executor
        self.plan = executor.plan
        self.train = train
        self.test = test
        self.seed = seed
        self.shuffle = shuffle
        self.dropLast = dropLast
        var all = (0..<Int32(train.count)).map { $0 }
        let held = Int((Double(train.count) * validationFraction).rounded(.down))
        if held > 0 {
            // A fixed split from the seed, the same in every epoch and on resume.
            var rng = Shuffler(seed: seed ^ 0x5A11D).generator(epoch: 0)
            fisherYates(&all, &rng)
            validationIndices = Array(all[(train.count - held)...])
            trainIndices = Array(all[..<(train.count - held)])
        } else {
            validationIndices = []
            trainIndices = all
        }
        epochOrder = trainIndices
        evalIndices = (0..<Int32(max(test.count, validationIndices.count))).map { $0 }
    }

    /// Training examples an epoch steps through (the training set less any held out for validation).
    public var trainingExamples: Int { trainIndices.count }

    public var stepsPerEpoch: Int {
        let n = trainIndices.count, b = plan.globalBatchSize
        return dropLast ? n / b : (n + b - 1) / b
    }

    /// The order of epoch `epoch` (1-based): a fresh permutation from (seed, epoch), independent of earlier epochs,
    /// so a resumed run sees the same order.
    package func prepareOrder(epoch: Int) {
        epochOrder = trainIndices
        if shuffle {
            var rng = Shuffler(seed: seed).generator(epoch: epoch)
            fisherYates(&epochOrder, &rng)
        }
    }

    /// Trains epoch `epoch` (1-based) and evaluates. `resumed` continues an epoch that stopped after
    /// `resumed.stepsDone` steps (its epoch must be `epoch`), giving the same result as an uninterrupted epoch.
    public func runEpoch(_ epoch: Int, resuming resumed: EpochProgress? = nil) throws -> EpochMetrics {
        let start = DispatchTime.now().uptimeNanoseconds
        latestTestEvaluation = nil
        allreduceTime = (0, 0)
        prepareOrder(epoch: epoch)
        let b = plan.globalBatchSize
        let steps = stepsPerEpoch
        let first = resumed.map { min(max($0.stepsDone, 0), steps) } ?? 0
        var lossSum = resumed?.lossSum ?? 0, rowsSeen = resumed?.rowsSeen ?? 0
        var lastLoss: Float = resumed?.lastLoss ?? 0
        progress = EpochProgress(epoch: epoch, stepsDone: first, lossSum: lossSum, rowsSeen: rowsSeen, lastLoss: lastLoss)
        // The first layer's features live in the last epoch go first in the parameter block for this
        // epoch's steps (same bits, less work); the model's order is back before anything else reads it.
        executor.storeLiveFeaturesFirst(agreeing: plan.dataParallel == nil ? nil : rankGroup.map { group in { group.sum($0, count: $1) } })
        defer { executor.restoreModelOrder() }
        try train.withBatchSamples { samples in
            guard let samples else { throw RuntimeError.data("\(train.origin): the training data has no class labels for this plan's loss") }
            try epochOrder.withUnsafeBufferPointer { order in
                if let parallel = plan.dataParallel {
                    let group = try ranks(for: parallel)
                    var sums = StepSums(lossSum: lossSum, rowsSeen: rowsSeen, lastLoss: lastLoss)
                    defer { (lossSum, rowsSeen, lastLoss) = (sums.lossSum, sums.rowsSeen, sums.lastLoss) }
                    try runSharedSteps(
                        epoch: epoch, steps: first..<steps, order: order, samples: samples, parallel: parallel, group: group, sums: &sums)
                    return
                }
                for step in first..<steps {
                    // The next epoch's order goes by this epoch's second half: in the first epoch
                    // many units fire a few times before they die.
                    if step == steps / 2 && steps >= 2 { executor.restartLivenessRecording() }
                    let rows = min(b, order.count - step * b)
                    let next = (step + 1) * b
                    let batch = StepExecutor.BatchSource(
                        samples: samples, indices: order.baseAddress! + step * b, rows: rows,
                        upcoming: UnsafeBufferPointer(rebasing: order[min(next, order.count)..<min(next + b, order.count)]))
                    let loss = executor.forward(batch)
                    if !loss.isFinite {
                        let culprit = nonFiniteReport(batch)
                        throw RuntimeError.nonFinite(
                            epoch: epoch, step: step + 1, kernel: culprit.label, what: culprit.what, source: culprit.source)
                    }
                    executor.backwardAndUpdate(rows: rows)
                    lastLoss = loss
                    lossSum += Double(loss) * Double(rows)
                    rowsSeen += rows
                    progress = EpochProgress(
                        epoch: epoch, stepsDone: step + 1, lossSum: lossSum, rowsSeen: rowsSeen, lastLoss: lastLoss)
                    onStep(step + 1, steps)
                    if stopRequested() { throw RuntimeError.interrupted(epoch: epoch, step: step + 1) }
                }
            }
        }
        executor.restoreModelOrder()
        if let bad = firstNonFiniteParameter() {
            throw RuntimeError.nonFinite(
                epoch: epoch, step: steps, kernel: "\(plan.optimizer.kind.rawValue)_step", what: "\(bad.name) is not finite",
                source: bad.location)
        }
        let trainEnd = DispatchTime.now().uptimeNanoseconds
        let testEvaluation = evaluate(test, indices: nil)
        latestTestEvaluation = testEvaluation
        let accuracy = testEvaluation.accuracy
        var validation: Double? = nil
        var validationR2: Double? = nil
        if !validationIndices.isEmpty {
            let held = evaluate(train, indices: validationIndices)
            if let r2 = held.regression?.r2 { validationR2 = r2 } else { validation = held.accuracy }
        }
        let end = DispatchTime.now().uptimeNanoseconds
        let seconds = Double(end - start) / 1e9
        let trainSeconds = Double(trainEnd - start) / 1e9
        var metrics = EpochMetrics(
            epoch: epoch, lastLoss: Double(lastLoss), meanLoss: rowsSeen > 0 ? lossSum / Double(rowsSeen) : 0,
            testAccuracy: accuracy, validationAccuracy: validation, seconds: seconds, trainSeconds: trainSeconds,
            samplesPerSecond: Double(rowsSeen - (resumed?.rowsSeen ?? 0)) / max(trainSeconds, 1e-9),
            regression: testEvaluation.regression, validationR2: validationR2)
        if plan.dataParallel != nil {
            metrics.allreduceSecondsPerStep = Double(allreduceTime.nanoseconds) / 1e9 / Double(max(allreduceTime.steps, 1))
        }
        return metrics
    }

    public struct Evaluation {
        public var correct: Int
        public var total: Int
        public var accuracy: Double { total > 0 ? 100 * Double(correct) / Double(total) : 0 }
        /// confusion[true][predicted]
        public var confusion: [[Int]]
        public var predictions: [Int32]
        /// A regressor's metrics, and its predictions and targets in the target's units (row after
        /// row, `width` values each).
        public var regression: RegressionMetrics? = nil
        public var predictedValues: [Double] = []
        public var trueValues: [Double] = []

        public init(correct: Int, total: Int, confusion: [[Int]], predictions: [Int32]) {
            self.correct = correct
            self.total = total
            self.confusion = confusion
            self.predictions = predictions
        }
    }

    /// Accuracy (percent) on `data` (all rows, or the given indices), with predictions and the confusion
    /// matrix; for a regressor, its metrics.
    public func evaluate(_ data: any Dataset, indices: [Int32]?) -> Evaluation {
        let order = indices ?? Array(evalIndices[..<data.count])
        if let parallel = plan.dataParallel, let group = rankGroup { return evaluateShared(data, order: order, parallel: parallel, group: group) }
        if plan.isRegression { return evaluateRegressor(executor, data, indices: order) }
        return evaluateClassifier(executor, data, indices: order)
    }

    func nonFiniteReport(_ batch: StepExecutor.BatchSource) -> (label: String, what: String, source: SourceLocation?) {
        if let bad = firstNonFiniteParameter() {
            return ("\(plan.optimizer.kind.rawValue)_step", "\(bad.name) is not finite", bad.location)
        }
        if let kernel = executor.firstNonFiniteForwardKernel(batch) {
            return (kernel.label, "its output is not finite", kernel.source)
        }
        let lossKernel = plan.trainKernels.first {
            if case .softmaxCrossEntropy = $0 { return true }
            if case .meanSquaredError = $0 { return true }
            if case .regressionLoss = $0 { return true }
            return false
        }
        return (lossKernel?.label ?? "loss", "the loss is not finite", lossKernel?.source)
    }

    func firstNonFiniteParameter() -> ParameterTensor? {
        let p = executor.parameters
        for tensor in plan.parameters {
            for i in 0..<tensor.storedCount where !p[tensor.offset + i].isFinite { return tensor }
        }
        return nil
    }
}

/// Shuffles a list of indices the way `Shuffler.permutation` shuffles 0..<count.
func fisherYates(_ values: inout [Int32], _ rng: inout Xoshiro256StarStar) {
    let count = values.count
    values.withUnsafeMutableBufferPointer { buffer in
        guard let base = buffer.baseAddress else { return }
        Shuffler.shuffle(base, count: count, using: &rng)
    }
}

/// Wilson score interval half-width is asymmetric; the normal approximation is what people quote for
/// 10,000 test images: 1.96 * sqrt(p(1-p)/n), in percent.
public func accuracyConfidence95(correct: Int, total: Int) -> Double {
    guard total > 0 else { return 0 }
    let p = Double(correct) / Double(total)
    return 196 * (p * (1 - p) / Double(total)).squareRoot()
}

/// Runs the plan's evaluation kernels over the rows `order` of `data` and counts what the classifier got
/// right: accuracy, the confusion matrix and every prediction (in `order`'s order).
public func evaluateClassifier(_ executor: StepExecutor, _ data: any Dataset, indices order: [Int32]) -> Trainer.Evaluation {
    let plan = executor.plan
    let classes = plan.classes
    var confusion = [[Int]](repeating: [Int](repeating: 0, count: classes), count: classes)
    var predictionsOut = [Int32](repeating: 0, count: order.count)
    var correct = 0
    forEachEvaluationBatch(executor, data, order: order) { start, rows, samples, predictions in
        let labels = samples.labels
        for r in 0..<rows {
            let truth = Int(labels[Int(order[start + r])])
            let predicted = Int(predictions[r])
            predictionsOut[start + r] = predictions[r]
            if truth == predicted { correct += 1 }
            if truth < classes && predicted >= 0 && predicted < classes { confusion[truth][predicted] += 1 }
        }
    }
    return Trainer.Evaluation(correct: correct, total: order.count, confusion: confusion, predictions: predictionsOut)
}

/// Runs the plan's evaluation kernels over the rows `order` of `data`, one evaluation batch at a time
/// (the next batch's rows given to gather ahead), and hands `body` each batch's first position in
/// `order`, its row count, the samples and the predicted classes.
func forEachEvaluationBatch(
    _ executor: StepExecutor, _ data: any Dataset, order: [Int32],
    _ body: (_ start: Int, _ rows: Int, _ samples: BatchSamples, _ predictions: UnsafeMutablePointer<Int32>) -> Void
) {
    let b = executor.plan.evalBatchSize
    data.withBatchSamples { samples in
        guard let samples else { return }
        order.withUnsafeBufferPointer { order in
            var start = 0
            while start < order.count {
                let rows = min(b, order.count - start)
                let next = start + rows
                let batch = StepExecutor.BatchSource(
                    samples: samples, indices: order.baseAddress! + start, rows: rows,
                    upcoming: UnsafeBufferPointer(rebasing: order[next..<min(next + b, order.count)]))
                body(start, rows, samples, executor.evaluate(batch))
                start += rows
            }
        }
    }
}

/// Runs the plan's evaluation kernels over the rows `order` of a dataset of target values and scores
/// the outputs against them in the target's units (the dataset's scales and offsets undo the
/// standardization): MAE, RMSE and R², each the mean over target columns.
public func evaluateRegressor(_ executor: StepExecutor, _ data: any Dataset, indices order: [Int32]) -> Trainer.Evaluation {
    let plan = executor.plan
    let width = plan.classes
    let scales = data.targetScales.count == width ? data.targetScales : [Double](repeating: 1, count: width)
    let offsets = data.targetOffsets.count == width ? data.targetOffsets : [Double](repeating: 0, count: width)
    var predicted = [Double](repeating: 0, count: order.count * width)
    var truth = [Double](repeating: 0, count: order.count * width)
    // A dataset without target values is refused before any step (checkDataset).
    forEachEvaluationBatch(executor, data, order: order) { start, rows, samples, _ in
        guard let targets = samples.targetValues else { return }
        let outputs = executor.evalLogits
        for r in 0..<rows {
            let row = Int(order[start + r])
            for j in 0..<width {
                predicted[(start + r) * width + j] = Double(outputs[r * width + j]) * scales[j] + offsets[j]
                truth[(start + r) * width + j] = Double(targets[row * width + j]) * scales[j] + offsets[j]
            }
        }
    }
    var evaluation = Trainer.Evaluation(correct: 0, total: order.count, confusion: [], predictions: [])
    evaluation.regression = regressionMetrics(predicted: predicted, truth: truth, width: width)
    evaluation.predictedValues = predicted
    evaluation.trueValues = truth
    return evaluation
}

/// MAE, RMSE and R² of row-major predictions against truth, `width` columns, each the mean over columns.
public func regressionMetrics(predicted: [Double], truth: [Double], width: Int) -> RegressionMetrics {
    let rows = width > 0 ? truth.count / width : 0
    guard rows > 0 else { return RegressionMetrics(mae: 0, rmse: 0, r2: 0) }
    var mae = 0.0, rmse = 0.0, r2 = 0.0
    for j in 0..<width {
        var absolute = 0.0, squared = 0.0, mean = 0.0
        for r in 0..<rows { mean += truth[r * width + j] }
        mean /= Double(rows)
        var total = 0.0
        for r in 0..<rows {
            let d = predicted[r * width + j] - truth[r * width + j]
            absolute += abs(d)
            squared += d * d
            let t = truth[r * width + j] - mean
            total += t * t
        }
        mae += absolute / Double(rows)
        rmse += (squared / Double(rows)).squareRoot()
        // scikit-learn's convention for a constant column: 1 when predicted exactly, else 0.
        r2 += total > 0 ? 1 - squared / total : (squared == 0 ? 1 : 0)
    }
    let n = Double(width)
    return RegressionMetrics(mae: mae / n, rmse: rmse / n, r2: r2 / n)
}
