import ArgumentParser
import Foundation
import KernelInterface
import Planner
import Execution
import DataSources
import Files
import Figures
import Runtime
import SpecParser

/// The arguments every spec-reading command shares.
struct SpecOptions: ParsableArguments {
    @Argument(help: "The spec file (YAML).")
    var spec: String

    @Option(name: .customLong("data-dir"), help: "Dataset directory; overrides the spec's data.dir and $MLPC_DATA_DIR.")
    var dataDir: String?

    func validate() throws {
        if spec.isEmpty { throw ValidationError("the spec path is empty") }
        if dataDir?.isEmpty == true { throw ValidationError("--data-dir is an empty path") }
    }

    /// --data-dir, else $MLPC_DATA_DIR, else the spec's own data.dir.
    var dataDirectoryOverride: String? {
        dataDirectoryFromFlagOrEnvironment(dataDir)
    }

    /// Where the data directory comes from when it is not the spec's data.dir, as messages name it.
    var dataDirectorySource: String? {
        if dataDir != nil { return "--data-dir" }
        return dataDirectoryOverride == nil ? nil : "MLPC_DATA_DIR"
    }
}

extension PlanPass: ExpressibleByArgument {}

/// `--disable-pass NAME` (repeatable): the optional planner passes to leave out. The plan records them.
struct PassOptions: ParsableArguments {
    @Option(
        name: .customLong("disable-pass"),
        help: ArgumentHelp(
            "Turn off an optional planner pass (repeatable; `mlpc plan` lists them and whether each applied): "
                + PlanPass.allCases.map { "\($0.rawValue): \($0.summary)" }.joined(separator: "; ") + ".",
            valueName: "pass"))
    var disabledPasses: [PlanPass] = []

    var planOptions: PlanOptions { PlanOptions(disabledPasses: Set(disabledPasses)) }
}

/// The dataset directory given to a command: `--data-dir` (its argument), else $MLPC_DATA_DIR when it is
/// set and not empty, else nil, which leaves the command's own default (a spec's data.dir; for `eval`
/// and `predict`, where the model was trained).
func dataDirectoryFromFlagOrEnvironment(_ dataDir: String?) -> String? {
    if let dataDir { return dataDir }
    if let env = ProcessInfo.processInfo.environment["MLPC_DATA_DIR"], !env.isEmpty { return env }
    return nil
}

/// A spec that loaded and planned, with every diagnostic found on the way (warnings included).
struct CheckedSpec {
    var spec: Spec
    var plan: Plan
    var diagnostics: [Diagnostic]
    var source: SourceFile
    /// A table spec's rows, loaded and encoded while checking (the model's width comes from them).
    var table: CheckedTable? = nil
}

/// Parse, decode and plan a spec for this machine. Diagnostics are rendered (text on stderr, or JSON on
/// stdout) when there are errors, and the failure carries the exit status: 2 for a path that cannot be
/// read, 1 for an invalid spec.
func checkSpec(
    _ options: SpecOptions, threads: Int?, format: OutputFormat, probeData: Bool, batchSize: Int? = nil,
    batchSizeFromFlag: Bool = true, planOptions: PlanOptions = PlanOptions(), fitBatchesToData: Bool = false, seed: UInt64? = nil
) throws -> CheckedSpec {
    let loaded = SpecLoader.load(path: options.spec, dataDirectoryOverride: options.dataDirectoryOverride)
    if let fileError = loaded.fileError { throw CommandFailure.usage(fileError) }
    var sources: [String: SourceFile] = [:]
    if let source = loaded.source { sources[source.path] = source }
    var diagnostics = loaded.diagnostics
    guard var spec = loaded.spec, let source = loaded.source else {
        try fail(diagnostics, sources: sources, format: format)
        throw CommandFailure(message: "", status: 1)
    }
    if let batchSize {
        // A value the user typed is named in diagnostics; a resumed run's own batch size is the spec's.
        if batchSizeFromFlag {
            spec.training.overrideBatchSize(batchSize, from: "--batch-size")
        } else {
            spec.training.batchSize.value = batchSize
        }
    }
    // The run's seed (--seed) also draws a table's test rows, as it draws everything else random.
    if let seed { spec.seed.value = seed }
    var table: CheckedTable?
    if spec.data.table != nil {
        // A table's width after one-hot encoding is known once its rows are read: before planning.
        let loaded = loadTableForSpec(&spec)
        diagnostics += loaded.diagnostics
        table = loaded.table
        guard let table, !diagnostics.hasErrors else {
            try fail(diagnostics, sources: sources, format: format)
            throw CommandFailure(message: "", status: 1)
        }
        if fitBatchesToData { diagnostics += fitBatches(&spec, trainCount: table.data.train.count, testCount: table.data.test.count) }
    } else if fitBatchesToData {
        // `mlpc run` plans for the batches the data can fill (the headers give the counts).
        diagnostics += Runtime.fitBatchesToData(&spec)
    }
    let (plan, planDiagnostics) = planForHost(spec, threads: threads, isa: try selectedKernels().isa, options: planOptions)
    diagnostics += planDiagnostics
    if let plan, probeData, table == nil {
        diagnostics += dataDiagnostics(spec: spec, plan: plan, directorySource: options.dataDirectorySource)
    }
    guard let plan, !diagnostics.hasErrors else {
        try fail(diagnostics, sources: sources, format: format)
        throw CommandFailure(message: "", status: 1)
    }
    return CheckedSpec(spec: spec, plan: plan, diagnostics: diagnostics, source: source, table: table)
}

private func fail(_ diagnostics: [Diagnostic], sources: [String: SourceFile], format: OutputFormat) throws {
    switch format {
    case .json: print(DiagnosticRenderer.json(diagnostics))
    case .text, .dot: writeError(DiagnosticRenderer.text(diagnostics, sources: sources, color: stderrIsTerminal))
    }
    throw CommandFailure(message: "", status: 1)
}

/// Warnings of a spec that is otherwise fine go to stderr in text mode.
func printWarnings(_ checked: CheckedSpec) {
    let warnings = checked.diagnostics.filter { $0.severity != .error }
    guard !warnings.isEmpty else { return }
    writeError(DiagnosticRenderer.text(warnings, sources: [checked.source.path: checked.source], color: stderrIsTerminal))
}

var stderrIsTerminal: Bool { isatty(2) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil }

/// The kernel set for this CPU (or $MLPC_KERNELS); an unusable choice is an argument error.
func selectedKernels() throws -> KernelSet {
    switch selectKernels(environment: processEnvironment()) {
    case .success(let set): return set
    case .failure(let error): throw CommandFailure.usage("\(error)")
    }
}
