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
