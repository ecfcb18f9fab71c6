import Foundation
import KernelInterface
import SpecParser

/// Where the arena's bytes go, exactly as planned (not an estimate of a framework's allocator).
public struct MemoryReport: Codable, Equatable, Sendable {
    public var parameterBytes: Int
    public var gradientBytes: Int
    public var optimizerStateBytes: Int
    public var workspaceBytes: Int
    /// Bytes of everything else at its peak (input batch, activations, their gradients, masks, evaluation
    /// buffers), after liveness sharing.
    public var activationBytes: Int
    /// What the activations would take if no two buffers shared memory.
    public var activationBytesUnshared: Int
    public var arenaBytes: Int
    /// Batch norm's running statistics (persistent).
    public var modelStateBytes: Int
    /// The convolutional layers' buffers among the activations, unshared: max pooling's argmax indices
    /// batch norm's batch statistics, and the evaluation's folded weights. Empty for a plan without them.
    public var convolutionBytes: [(String, Int)]

    public static func == (a: MemoryReport, b: MemoryReport) -> Bool {
        a.parameterBytes == b.parameterBytes && a.gradientBytes == b.gradientBytes && a.optimizerStateBytes == b.optimizerStateBytes
            && a.workspaceBytes == b.workspaceBytes && a.activationBytes == b.activationBytes
            && a.activationBytesUnshared == b.activationBytesUnshared && a.arenaBytes == b.arenaBytes
            && a.modelStateBytes == b.modelStateBytes && a.convolutionBytes.map(\.0) == b.convolutionBytes.map(\.0)
            && a.convolutionBytes.map(\.1) == b.convolutionBytes.map(\.1)
    }

    private enum CodingKeys: String, CodingKey {
        case parameterBytes, gradientBytes, optimizerStateBytes, workspaceBytes, activationBytes, activationBytesUnshared, arenaBytes,
            modelStateBytes
    }

    public init(_ plan: Plan) {
        func sum(_ roles: Set<Buffer.Role>) -> Int {
            plan.buffers.filter { roles.contains($0.role) }.reduce(0) { $0 + $1.bytes }
        }
        parameterBytes = sum([.parameters])
        gradientBytes = sum([.gradients])
        optimizerStateBytes = sum([.optimizerState])
        workspaceBytes = sum([.workspace])
        let persistent = plan.buffers.filter { isPersistent($0.role) }
        let persistentEnd = persistent.map { roundUp($0.offset + $0.bytes, to: arenaAlignmentBytes) }.max() ?? 0
        activationBytes = plan.arenaBytes - persistentEnd
        activationBytesUnshared = plan.buffers.filter { !isPersistent($0.role) }.reduce(0) { $0 + $1.bytes }
        arenaBytes = plan.arenaBytes
        modelStateBytes = sum([.modelState])
        convolutionBytes = [
            ("max pooling indices", sum([.poolIndices])),
            ("batch norm batch statistics", sum([.statistics])),
            ("batch norm folded into weights (evaluation)", sum([.foldedWeights])),
        ].filter { $0.1 > 0 }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        parameterBytes = try c.decode(Int.self, forKey: .parameterBytes)
        gradientBytes = try c.decode(Int.self, forKey: .gradientBytes)
        optimizerStateBytes = try c.decode(Int.self, forKey: .optimizerStateBytes)
        workspaceBytes = try c.decode(Int.self, forKey: .workspaceBytes)
        activationBytes = try c.decode(Int.self, forKey: .activationBytes)
        activationBytesUnshared = try c.decode(Int.self, forKey: .activationBytesUnshared)
        arenaBytes = try c.decode(Int.self, forKey: .arenaBytes)
        modelStateBytes = try c.decodeIfPresent(Int.self, forKey: .modelStateBytes) ?? 0
        convolutionBytes = []
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(parameterBytes, forKey: .parameterBytes)
        try c.encode(gradientBytes, forKey: .gradientBytes)
        try c.encode(optimizerStateBytes, forKey: .optimizerStateBytes)
        try c.encode(workspaceBytes, forKey: .workspaceBytes)
        try c.encode(activationBytes, forKey: .activationBytes)
        try c.encode(activationBytesUnshared, forKey: .activationBytesUnshared)
        try c.encode(arenaBytes, forKey: .arenaBytes)
        if modelStateBytes > 0 { try c.encode(modelStateBytes, forKey: .modelStateBytes) }
    }
}

func resourceDiagnostics(_ plan: Plan, spec: Spec) -> [Diagnostic] {
    let report = MemoryReport(plan)
    guard report.arenaBytes > plan.target.memoryBytes else { return [] }
    var notes = [
        DiagnosticNote(
            "parameters \(formatBytes(report.parameterBytes)), gradients \(formatBytes(report.gradientBytes)), optimizer state \(formatBytes(report.optimizerStateBytes)), activations \(formatBytes(report.activationBytes)) at batch \(plan.batchSize), workspace \(formatBytes(report.workspaceBytes))",
            at: spec.model.location)
    ]
    var message = "the plan needs \(formatBytes(report.arenaBytes)) of memory but this machine has \(formatBytes(plan.target.memoryBytes))"
    var suggestion = "reduce the layer sizes or the batch size"
    // The location stays at the spec's batch_size (the place to change it for good), but a batch size
    // from the command line must not read as the spec's.
    if let override = spec.training.batchSizeOverride {
        message += " at batch size \(plan.batchSize), given by \(override.flag) \(plan.batchSize)"
        notes.append(DiagnosticNote(
            "\(override.flag) overrides the spec's batch_size \(override.specValue)", at: spec.training.batchSize.location))
        suggestion = "reduce the layer sizes or \(override.flag)"
    }
    return [.error("E0501", message, at: spec.training.batchSize.location, notes: notes, suggestion: suggestion)]
}

/// 1536 -> "1.5 KiB"; exact bytes are printed beside this where they matter.
public func formatBytes(_ bytes: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1024 && unit < units.count - 1 {
        value /= 1024
        unit += 1
    }
    if unit == 0 { return "\(bytes) B" }
    return String(format: "%.1f %@", value, units[unit])
}
