/// Data-parallel training over `ranks` processes (`mpirun -np N mlpc run`): every rank runs this plan
/// on its share of each batch of `globalBatchSize` rows (`Plan.batchSize` is the largest share), and
/// one allreduce per step sums the gradient block with a short trailer before the optimizer step,
/// which every rank then runs on the same sums. A model with state (batch norm's running statistics,
/// which each rank updates from its own share) sends it in the same allreduce: every rank keeps the
/// mean over the ranks, so that after every step all hold one model.
public struct DataParallel: Codable, Equatable, Sendable {
    public var ranks: Int
    /// The spec's batch_size: the rows of one optimizer step over all ranks.
    public var globalBatchSize: Int
    /// Floats the step's allreduce sums in place: the gradient block, then `trailerFloats` floats
    /// (`Trailer`) in the same buffer, so that one call carries them.
    public var allreduceFloats: Int
    public var trailerOffset: Int
    public var allreducesPerStep: Int
    /// Where the model state's copy starts in the allreduce buffer (after the trailer's
    /// `trailerFloats`), for a model that has state; nil for one without.
    public var modelStateOffset: Int? = nil

    /// Floats after the gradient block in the gradients buffer (one 64-byte line).
    public static let trailerFloats = 16

    /// What the trailer's floats hold; each rank writes its own values and the allreduce sums them.
    public enum Trailer {
        /// The rank's loss times its rows (the sum over ranks divided by the global rows is the step's loss).
        public static let lossSum = 0
        /// 1 on a rank that was asked to stop (SIGINT, SIGTERM): every rank stops after the same step.
        public static let stopRequests = 1
    }

    /// The rows rank `rank` takes of a batch of `rows` rows: an even split in rank order.
    public func share(rows: Int, rank: Int) -> Range<Int> {
        let base = rows / ranks, extra = rows % ranks
        let start = rank * base + min(rank, extra)
        return start..<(start + base + (rank < extra ? 1 : 0))
    }

    /// Bytes of the step's allreduce.
    public var allreduceBytes: Int { allreduceFloats * 4 }

    /// A ring allreduce sends and receives 2 (N - 1) / N of the buffer on each rank, in 2 (N - 1)
    /// messages: the time at `bitsPerSecond` with `latencySeconds` per message (MPI's large-message
    /// algorithms are of this kind).
    public func allreduceSeconds(bitsPerSecond: Double, latencySeconds: Double) -> Double {
        guard ranks > 1 else { return 0 }
        let n = Double(ranks)
        let bytesEachWay = 2 * (n - 1) / n * Double(allreduceBytes)
        return 2 * (n - 1) * latencySeconds + bytesEachWay * 8 / bitsPerSecond
    }
}

extension Plan {
    /// The rows of one optimizer step over every rank (the spec's batch_size).
    public var globalBatchSize: Int { dataParallel?.globalBatchSize ?? batchSize }
    public var ranks: Int { dataParallel?.ranks ?? 1 }
}
