import DataSources
import Dispatch
import Planner
import SpecParser

/// Training steps and evaluation of a data-parallel plan (`Plan.dataParallel`): every rank walks the
/// same order (the permutation of the seed and the epoch) and takes its share of each batch; one
/// allreduce per step sums the gradient block and its trailer (and the model state, whose mean every
/// rank keeps); every rank then runs the same optimizer step on the same sums, so the parameters stay
/// identical without being sent.
extension Trainer {
    /// The running sums of an epoch, over every rank.
    struct StepSums {
        var lossSum: Double
        var rowsSeen: Int
        var lastLoss: Float
    }

    func ranks(for parallel: DataParallel) throws -> any RankGroup {
        guard let group = rankGroup, group.size == parallel.ranks else {
            let have = rankGroup.map { "\($0.size) ranks" } ?? "one process"
            throw RuntimeError.data("the plan is for \(parallel.ranks) ranks, but this run has \(have) (start it with mpirun -np \(parallel.ranks))")
        }
        return group
    }

    func runSharedSteps(
        epoch: Int, steps: Range<Int>, order: UnsafeBufferPointer<Int32>, samples: BatchSamples, parallel: DataParallel,
        group: any RankGroup, sums: inout StepSums
    ) throws {
        let b = parallel.globalBatchSize
        let gradients = executor.gradients
        let trailer = gradients + parallel.trailerOffset
        let lastStep = stepsPerEpoch
        for step in steps {
            if step == lastStep / 2 && lastStep >= 2 { executor.restartLivenessRecording() }
            let start = step * b
            let rows = min(b, order.count - start)
            let share = parallel.share(rows: rows, rank: group.rank)
            // This rank's share of the next batch, gathered ahead where the plan says so.
            let next = start + b
            let nextShare = parallel.share(rows: max(0, min(b, order.count - next)), rank: group.rank)
            let upcoming =
                step + 1 < lastStep
                ? UnsafeBufferPointer(rebasing: order[(next + nextShare.lowerBound)..<(next + nextShare.upperBound)])
                : UnsafeBufferPointer(start: nil, count: 0)
            let batch = StepExecutor.BatchSource(
                samples: samples, indices: order.baseAddress! + start + share.lowerBound, rows: share.count, upcoming: upcoming)
            trailer.update(repeating: 0, count: DataParallel.trailerFloats)
            if share.isEmpty {
                executor.clearGradients()
            } else {
                let loss = executor.forward(batch)
                // The loss kernel divides by this rank's rows; the sum over ranks must divide by the batch's.
                executor.scaleLossGradient(by: Float(share.count) / Float(rows), rows: share.count)
                executor.backward(rows: share.count)
                trailer[DataParallel.Trailer.lossSum] = loss * Float(share.count)
            }
            if stopRequested() { trailer[DataParallel.Trailer.stopRequests] = 1 }
            // Batch norm's running statistics, updated by this rank's forward from its own share, go out
            // with the gradients and come back as the mean over the ranks: from every step on, every
            // rank holds the same model (which evaluation, a checkpoint and a resume then see).
            if let stateOffset = parallel.modelStateOffset, let state = executor.modelState {
                (gradients + stateOffset).update(from: state, count: plan.modelStateFloats)
                // Batches counted are the model's steps: rank 0's count (its share is never empty).
                if group.rank != 0 {
                    for tensor in plan.modelState where tensor.role == .batchesTracked { gradients[stateOffset + tensor.offset] = 0 }
                }
            }
            let sent = DispatchTime.now().uptimeNanoseconds
            group.sum(gradients, count: parallel.allreduceFloats)
            allreduceTime.nanoseconds += DispatchTime.now().uptimeNanoseconds - sent
            allreduceTime.steps += 1
            if let stateOffset = parallel.modelStateOffset, let state = executor.modelState {
                let ranks = Float(group.size)
                for i in 0..<plan.modelStateFloats { state[i] = gradients[stateOffset + i] / ranks }
                for tensor in plan.modelState where tensor.role == .batchesTracked { state[tensor.offset] = gradients[stateOffset + tensor.offset] }
            }
            let loss = trailer[DataParallel.Trailer.lossSum] / Float(rows)
            if !loss.isFinite {
                let culprit: (label: String, what: String, source: SourceLocation?) =
                    share.isEmpty
                    ? (label: "loss", what: "the loss is not finite", source: nil)
                    : nonFiniteReport(batch)
                throw RuntimeError.nonFinite(epoch: epoch, step: step + 1, kernel: culprit.label, what: culprit.what, source: culprit.source)
            }
            executor.update()
            sums.lastLoss = loss
            sums.lossSum += Double(trailer[DataParallel.Trailer.lossSum])
            sums.rowsSeen += rows
            progress = EpochProgress(
                epoch: epoch, stepsDone: step + 1, lossSum: sums.lossSum, rowsSeen: sums.rowsSeen, lastLoss: sums.lastLoss)
            onStep(step + 1, lastStep)
            // Every rank saw the same requests in the sums: all stop after this step.
            if trailer[DataParallel.Trailer.stopRequests] > 0 { throw RuntimeError.interrupted(epoch: epoch, step: step + 1) }
        }
    }

    /// Each rank evaluates its share of `order` (an even split in rank order); one allreduce of the
    /// counts, the confusion matrix and the predictions (each rank's at its own positions) gives every
    /// rank the whole evaluation.
    func evaluateShared(_ data: any Dataset, order: [Int32], parallel: DataParallel, group: any RankGroup) -> Evaluation {
        let share = parallel.share(rows: order.count, rank: group.rank)
        if plan.isRegression { return evaluateRegressorShared(data, order: order, share: share, group: group) }
        let local = evaluateClassifier(executor, data, indices: Array(order[share]))
        let classes = plan.classes
        var counts = [Int32](repeating: 0, count: 1 + classes * classes + order.count)
        counts[0] = Int32(local.correct)
        for t in 0..<classes {
            for p in 0..<classes { counts[1 + t * classes + p] = Int32(local.confusion[t][p]) }
        }
        let predictions = 1 + classes * classes
        for (i, predicted) in local.predictions.enumerated() { counts[predictions + share.lowerBound + i] = predicted }
        counts.withUnsafeMutableBufferPointer { group.sum($0.baseAddress!, count: $0.count) }
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: classes), count: classes)
        for t in 0..<classes {
            for p in 0..<classes { confusion[t][p] = Int(counts[1 + t * classes + p]) }
        }
        return Evaluation(
            correct: Int(counts[0]), total: order.count, confusion: confusion, predictions: Array(counts[predictions...]))
    }

    /// A regressor's evaluation over the ranks: each rank predicts its share, and one allreduce (in
    /// Double) of the predictions and targets, each rank's at its own positions and zeros elsewhere,
    /// gives every rank all of them exactly (a sum with zeros rounds nothing). The metrics are then
    /// those one process computes from the same outputs, in the same order, and the run's pictures
    /// show every row.
    func evaluateRegressorShared(_ data: any Dataset, order: [Int32], share: Range<Int>, group: any RankGroup) -> Evaluation {
        let width = plan.classes
        let local = evaluateRegressor(executor, data, indices: Array(order[share]))
        let values = order.count * width
        var both = [Double](repeating: 0, count: 2 * values)
        let at = share.lowerBound * width
        for i in 0..<local.predictedValues.count {
            both[at + i] = local.predictedValues[i]
            both[values + at + i] = local.trueValues[i]
        }
        both.withUnsafeMutableBufferPointer { group.sum($0.baseAddress!, count: $0.count) }
        let predicted = Array(both[..<values]), truth = Array(both[values...])
        var evaluation = Evaluation(correct: 0, total: order.count, confusion: [], predictions: [])
        evaluation.regression = regressionMetrics(predicted: predicted, truth: truth, width: width)
        evaluation.predictedValues = predicted
        evaluation.trueValues = truth
        return evaluation
    }
}
