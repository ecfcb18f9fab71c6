import DataSources
import Execution
import Files
import Foundation
import Planner

/// The ranks of a data-parallel run hold different plans, data or mlpc versions: every rank throws it
/// at start-up, before any step.
public struct RanksDisagree: Error, CustomStringConvertible {
    public var differences: [String]
    public var description: String {
        "the ranks of this mpirun job disagree, so they cannot train one model: " + differences.joined(separator: "; ")
    }
}

extension TrainingRun {
    /// What every rank must agree on, as lines of "name value": the mlpc version, the plan (less what
    /// does not change a step: the CPU's name, its memory and the data directory's path), its threads and
    /// kernel set (named apart, for the message), the data's checksums, and the point training starts from.
    func rankFingerprint() -> [(name: String, value: String)] {
        var neutral = plan
        neutral.target.cpuName = ""
        neutral.target.memoryBytes = 0
        neutral.target.threads = 0
        neutral.target.isa = .portable
        neutral.data.directory = ""
        let sums = data.sha256.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)\n" }.joined()
        return [
            ("mlpc version", options.mlpcVersion),
            ("batch size", String(plan.globalBatchSize)),
            ("parameters", String(plan.parameterCount)),
            ("plan SHA-256", SHA256.hash(Array(PlanText.json(neutral).utf8)).hex),
            ("threads", String(plan.target.threads)),
            ("kernels", "\(plan.target.isa)"),
            ("data SHA-256", SHA256.hash(Array(sums.utf8)).hex),
            ("seed", String(options.seed)),
            ("start", partialEpoch.map { "epoch \($0.epoch), step \($0.stepsDone + 1)" } ?? "epoch \(completedEpochs + 1)"),
        ]
    }

    /// Before the first step of a data-parallel run: every rank's fingerprint is compared with the first
    /// rank's (one allgather; a mismatch throws `RanksDisagree` on every rank, since every rank sees
    /// every fingerprint), then every rank takes the first rank's parameters, optimizer moments, model state and step
    /// count, so that all start from the same bits.
    public func agreeAcrossRanks() throws {
        guard let ranks else { return }
        let record = Self.recordBytes(rankFingerprint())
        let all = ranks.gather(record).map(Self.fields)
        var differences: [String] = []
        for (index, field) in all[0].enumerated() {
            let differing = (1..<all.count).filter { all[$0].count <= index || all[$0][index] != field }
            guard !differing.isEmpty else { continue }
            let others = differing.map { "rank \($0) has \(all[$0].count > index ? all[$0][index].value : "none")" }
            differences.append("\(field.name): rank 0 has \(field.value), " + others.joined(separator: ", "))
        }
        guard differences.isEmpty else { throw RanksDisagree(differences: differences) }
        let executor = trainer.executor
        let floats = plan.parameterBlockFloats * 4
        ranks.broadcast(executor.parameters, count: floats, from: 0)
        for block in 0..<plan.optimizer.stateBlocks { ranks.broadcast(executor.stateBlock(block), count: floats, from: 0) }
        // Batch norm's running statistics too: every rank starts from the same model.
        if let state = executor.modelState { ranks.broadcast(state, count: plan.modelStateFloats * 4, from: 0) }
        var steps = Int64(executor.optimizerSteps)
        ranks.broadcast(&steps, count: 8, from: 0)
        executor.optimizerSteps = Int(steps)
    }

    /// Fixed-length record of the fields (MPI_Allgather sends the same length from every rank).
    static let recordLength = 1024

    static func recordBytes(_ fields: [(name: String, value: String)]) -> [UInt8] {
        var bytes = Array(fields.map { "\($0.name)\t\($0.value)\n" }.joined().utf8.prefix(recordLength))
        bytes += [UInt8](repeating: 0, count: recordLength - bytes.count)
        return bytes
    }

    static func fields(_ bytes: [UInt8]) -> [Field] {
        let text = String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        return text.split(separator: "\n").map { line in
            let parts = line.split(separator: "\t", maxSplits: 1)
            return Field(name: String(parts[0]), value: parts.count > 1 ? String(parts[1]) : "")
        }
    }

    struct Field: Equatable {
        var name: String
        var value: String
    }
}
