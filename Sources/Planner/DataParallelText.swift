import Foundation

extension PlanText {
    /// The data-parallel section of `mlpc plan --ranks N`: the split of a batch and what one step sends.
    public static func dataParallel(_ plan: Plan) -> String {
        guard let parallel = plan.dataParallel else { return "" }
        let gradientFloats = parallel.trailerOffset
        var out = "data parallel over \(parallel.ranks) ranks (mpirun -np \(parallel.ranks)):\n"
        out += "  batch: \(parallel.globalBatchSize) rows per step over all ranks, at most \(plan.batchSize) on each\n"
        let state = parallel.modelStateOffset == nil ? "" : ", then the model state's \(grouped(plan.modelStateFloats)) floats, whose mean every rank keeps"
        out += "  per step: \(parallel.allreducesPerStep) allreduce (sum) of \(grouped(parallel.allreduceFloats)) floats, \(grouped(parallel.allreduceBytes)) bytes (the gradient block's \(grouped(gradientFloats)) floats and a \(DataParallel.trailerFloats)-float trailer with the loss and stop requests\(state))\n"
        let reduced = plan.isRegression ? "predicted and true values" : "counts and predictions"
        out += "  evaluation: each rank evaluates its share of the rows; one allreduce of the \(reduced) per evaluation\n"
        return out
    }

    /// The step time of `plan` on `ranks` ranks joined at `gigabitsPerSecond` with `latencyMicroseconds`
    /// per message, each rank computing at `gflops` GFLOP/s: one line per quantity.
    public static func stepEstimate(_ plan: Plan, gigabitsPerSecond: Double, latencyMicroseconds: Double, gflops: Double) -> String {
        let ranks = plan.ranks
        let compute = Double(plan.trainFlopsPerStep) / (gflops * 1e9)
        let communication = plan.dataParallel?.allreduceSeconds(
            bitsPerSecond: gigabitsPerSecond * 1e9, latencySeconds: latencyMicroseconds * 1e-6) ?? 0
        let step = compute + communication
        let samples = Double(plan.globalBatchSize) / max(step, 1e-12)
        var out = "step estimate at \(number(gigabitsPerSecond)) Gbit/s, \(number(latencyMicroseconds)) us per message, \(number(gflops)) GFLOP/s per rank:\n"
        out += "  compute: \(mflops(plan.trainFlopsPerStep)) MFLOP per rank, \(microseconds(compute))\n"
        if ranks > 1 {
            let n = Double(ranks)
            let bytes = Int(2 * (n - 1) / n * Double(plan.dataParallel!.allreduceBytes))
            out += "  allreduce (ring): \(grouped(bytes)) bytes in and out of each rank in \(2 * (ranks - 1)) messages, \(microseconds(communication))\n"
        }
        out += "  step: \(microseconds(step)) without overlap (\(grouped(Int(samples))) samples/s over \(ranks) rank\(ranks == 1 ? "" : "s"))\n"
        return out
    }

    static func microseconds(_ seconds: Double) -> String { String(format: "%.1f us", seconds * 1e6) }
    static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(format: "%g", value)
    }
}
