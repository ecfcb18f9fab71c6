import ArgumentParser
import Foundation
import Planner
import Execution
import DataSources
import Files
import Figures
import Ranks
import Runtime
import SpecParser

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Train and evaluate a spec, writing run.json, metrics.jsonl, a copy of the spec, a checkpoint per epoch, the weights, the model and pictures to the run directory.",
        discussion: """
            Ctrl-C (SIGINT) or SIGTERM finishes the current step, saves checkpoint.safetensors and exits with status 3; \
            `mlpc run --resume DIR` continues from there and ends with the same weights as an uninterrupted run.
            Exit status: 0 trained, 1 invalid spec or data, 2 unusable arguments or path, 3 training diverged or was interrupted.
            Data-parallel training: `mpirun -np N mlpc run SPEC` trains one model on N processes, each taking its share of every \
            batch (`mlpc plan --ranks N` shows the split and the communication); the first rank writes the run directory.
            """
    )

    @Argument(help: "The spec file (YAML). With --resume it may be left out; if given it must be the run's own spec.")
    var spec: String?

    @Option(name: .customLong("data-dir"), help: "Dataset directory; overrides the spec's data.dir and $MLPC_DATA_DIR.")
    var dataDir: String?

    @Option(help: "Continue the run in this directory from its checkpoint.safetensors, with its spec.yaml.")
    var resume: String?

    @Option(parsing: .unconditional, help: "Epochs to train (default: the spec's training.epochs; when resuming, the run's).")
    var epochs: Int?

    @Option(name: .customLong("batch-size"), parsing: .unconditional, help: "Batch size (default: the spec's training.batch_size).")
    var batchSize: Int?

    @Option(parsing: .unconditional, help: "Worker threads (default: the spec's training.threads, else all cores).")
    var threads: Int?

    @Option(parsing: .unconditional, help: "Random seed for initialisation, shuffling, dropout and a table's test_fraction split (default: the spec's seed).")
    var seed: UInt64?

    @Option(help: "Run directory (default: runs/<spec name>/).")
    var out: String?

    @Flag(help: "Replace the run already in the output directory (its files are removed once this run's data is loaded).")
    var overwrite = false

    @Flag(help: "Print only the final accuracy line.")
    var quiet = false

    @OptionGroup var passes: PassOptions

    func validate() throws {
        if spec == nil && resume == nil { throw ValidationError("give a spec file to train, or --resume DIR to continue a run") }
        if resume != nil && out != nil { throw ValidationError("--resume continues in its own directory; leave out --out") }
        if resume != nil && overwrite { throw ValidationError("--resume continues the run; --overwrite would replace it: choose one") }
        if let epochs, epochs < 1 || epochs > 1 << 20 { throw ValidationError("--epochs must be between 1 and 1048576, as in a spec") }
        for (flag, path) in [("--out", out), ("--resume", resume), ("--data-dir", dataDir), ("spec path", spec)] where path?.isEmpty == true {
            throw ValidationError("\(flag) is an empty path")
        }
        if let batchSize, batchSize < 1 || batchSize > 1 << 20 { throw ValidationError("--batch-size must be between 1 and 1048576") }
        if let threads, threads < 1 || threads > 1024 { throw ValidationError("--threads must be between 1 and 1024") }
    }

    /// --data-dir, else $MLPC_DATA_DIR.
    var dataDirectoryOverride: String? {
        dataDirectoryFromFlagOrEnvironment(dataDir)
    }

    func run() throws {
        // Under mpirun (more than one rank) this process joins the job; otherwise MPI is never loaded.
        let ranks: MPIRanks?
        do {
            ranks = try MPIRanks.joinIfLaunched(environment: ProcessInfo.processInfo.environment)
        } catch {
            throw CommandFailure.usage("\(error)")
        }
        if let resume {
            try resumeRun(directory: resume, ranks: ranks)
        } else if let spec {
            var planOptions = passes.planOptions
            planOptions.ranks = ranks?.size ?? 1
            let checked = try checkSpec(
                specOptions(spec, dataDirectory: dataDir), threads: threads, format: .text, probeData: false, batchSize: batchSize,
                planOptions: planOptions, fitBatchesToData: true, seed: seed)
            let epochs = self.epochs ?? checked.spec.training.epochs.value
            try train(
                checked, epochs: epochs, seed: seed ?? checked.spec.seed.value, outputDirectory: out ?? "runs/\(checked.spec.name.value)",
                checkpoint: nil, ranks: ranks)
        }
    }

    func specOptions(_ path: String, dataDirectory: String?) throws -> SpecOptions {
        try SpecOptions.parse((dataDirectory.map { ["--data-dir", $0] } ?? []) + ["--", path])
    }

    /// `--resume DIR`: the spec is DIR/spec.yaml, the seed, batch size, epochs and data directory are the
    /// checkpoint's unless given (and a given seed or batch size must agree).
    func resumeRun(directory: String, ranks: MPIRanks?) throws {
        let specCopy = directory + "/spec.yaml"
        let checkpointPath = directory + "/" + Checkpoint.fileName
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) else {
            throw CommandFailure.usage("cannot resume \(pathForMessage(directory)): the directory does not exist")
        }
        guard isDirectory.boolValue else {
            throw CommandFailure.usage("cannot resume \(pathForMessage(directory)): it is not a directory (give the run directory of `mlpc run`)")
        }
        guard FileManager.default.fileExists(atPath: specCopy) else {
            throw CommandFailure.usage("cannot resume \(directory): \(specCopy) does not exist (is it a run directory of `mlpc run`?)")
        }
        guard FileManager.default.fileExists(atPath: checkpointPath) else {
            // A finished run's model must not be lost to advice: --overwrite only for a run with nothing to keep.
            if FileManager.default.fileExists(atPath: directory + "/model.safetensors") {
                throw CommandFailure.usage(
                    "cannot resume \(directory): \(checkpointPath) does not exist, so the run cannot be continued (its model.safetensors is there: the run finished); train again with another --out")
            }
            throw CommandFailure.usage(
                "cannot resume \(directory): \(checkpointPath) does not exist: the run stopped before its first checkpoint (or another mlpc is still starting it), so there is nothing to continue; start it again with `mlpc run \(specCopy) --out \(directory) --overwrite`")
        }
        let settings: Checkpoint.Settings
        do {
            settings = try Checkpoint.settings(path: checkpointPath)
        } catch {
            // A checkpoint path that is no regular file (a directory, a FIFO) is an unusable path (2), as
            // for eval and predict; a damaged checkpoint is invalid input (1).
            throw commandFailure(for: error)
        }
        if let seed, seed != settings.seed {
            throw CommandFailure.usage("--seed \(seed) disagrees with the run's seed \(settings.seed) (\(checkpointPath))")
        }
        if let batchSize, batchSize != settings.batchSize {
            throw CommandFailure.usage("--batch-size \(batchSize) disagrees with the run's batch size \(settings.batchSize) (\(checkpointPath))")
        }
        // Fewer epochs than the run has reached would record a model from later than its last epoch.
        let epochs = self.epochs ?? settings.epochs
        if let shortfall = settings.shortfall(epochs: epochs) {
            throw CommandFailure.usage("cannot resume \(directory) for \(epochs) epoch\(epochs == 1 ? "" : "s") (\(checkpointPath)): \(shortfall)")
        }
        // The same split of every batch: the ranks sum their gradients in an order that depends on their number.
        let size = ranks?.size ?? 1
        if settings.planOptions.ranks != size {
            let started = settings.planOptions.ranks == 1 ? "one process" : "\(settings.planOptions.ranks) ranks"
            let now = size == 1 ? "one process" : "\(size) ranks"
            let command = settings.planOptions.ranks == 1 ? "mlpc run --resume \(directory)" : "mpirun -np \(settings.planOptions.ranks) mlpc run --resume \(directory)"
            throw CommandFailure.usage(
                "cannot resume \(directory) on \(now): it was trained on \(started) (\(checkpointPath)), and the gradients of a batch are summed in an order that depends on the number of processes, so the run would not continue as it began; resume it with `\(command)`")
        }
        // The run's passes: a resumed run plans the kernels it was started with.
        if !passes.disabledPasses.isEmpty && passes.planOptions.disabledPasses != settings.planOptions.disabledPasses {
            let recorded = settings.planOptions.disabledPasses.sorted().map(\.rawValue)
            throw CommandFailure.usage(
                "--disable-pass disagrees with the run's \(recorded.isEmpty ? "passes (none turned off)" : "turned-off passes (\(recorded.joined(separator: ", ")))") (\(checkpointPath))")
        }
        let checked = try checkSpec(
            specOptions(specCopy, dataDirectory: dataDirectoryOverride ?? settings.dataDirectory), threads: threads, format: .text,
            probeData: false, batchSize: settings.batchSize, batchSizeFromFlag: batchSize != nil, planOptions: settings.planOptions,
            fitBatchesToData: true)
        if let spec {
            // The given spec, resolved with the run's data directory, seed and batch size, must be the run's.
            var given = try checkSpec(
                specOptions(spec, dataDirectory: dataDirectoryOverride ?? settings.dataDirectory), threads: threads, format: .text,
                probeData: false, batchSize: settings.batchSize, batchSizeFromFlag: batchSize != nil, fitBatchesToData: true
            ).spec
            given.seed.value = settings.seed
            guard given.resolvedYAML == checked.spec.resolvedYAML else {
                throw CommandFailure.usage(
                    "\(spec) differs from \(specCopy), the spec the run was started with; resume without the spec argument, or start a new run with --out")
            }
        }
        // The checkpoint was written with the run directory's spec.yaml; this run's spec differs from it
        // only in the data directory when --data-dir (or MLPC_DATA_DIR) names where the data is now.
        guard let recorded = FileManager.default.contents(atPath: specCopy) else {
            throw CommandFailure.usage("cannot resume \(directory): cannot read \(specCopy)")
        }
        try train(
            checked, epochs: epochs, seed: settings.seed, outputDirectory: directory, checkpoint: checkpointPath,
            recordedSpecSHA256: SHA256.hash(Array(recorded)).hex, ranks: ranks)
    }

    func train(
        _ checked: CheckedSpec, epochs: Int, seed: UInt64, outputDirectory: String, checkpoint: String?, recordedSpecSHA256: String? = nil,
        ranks: MPIRanks? = nil
    ) throws {
        // The resolved spec the run records says what ran: the seed and batch size actually used.
        var spec = checked.spec
        spec.seed.value = seed
        // Of the ranks of a data-parallel run only the first prints and writes the run directory.
        let writes = ranks?.isFirst ?? true
        let quiet = self.quiet || !writes
        if !quiet { printWarnings(checked) }
        let kernels = try selectedKernels()
        // Claim the output directory before reading any data: a directory that cannot be written, holds
        // another run, or is in use by another mlpc is refused before any work is done.
        var directory: RunDirectory? = nil
        if writes {
            do {
                directory = try RunDirectory(path: outputDirectory, mode: checkpoint != nil ? .resume : (overwrite ? .overwrite : .fresh))
            } catch {
                throw CommandFailure.usage("\(error)")
            }
        }
        defer { withExtendedLifetime(directory) {} }
        directory?.removeOnSignalUntilRunBegins()
        StartupSignals.exitWithStatus130()
        // The first rank loads first (downloading MNIST if it must), the others once it has: one download.
        if let ranks, !ranks.isFirst { ranks.barrier() }
        var data: LoadedData
        do {
            data = try checked.table?.data ?? loadData(plan: checked.plan, log: { if !quiet { writeError($0 + "\n") } })
            if let table = spec.data.table { data.sha256 = try tableFileSHA256(table) }
        } catch {
            throw CommandFailure.invalid("mlpc: error: \(ranks.map { "rank \($0.rank): " } ?? "")\(error)")
        }
        if let ranks, ranks.isFirst { ranks.barrier() }
        // Data downloaded just now had no counts when the spec was planned: batches larger than it can
        // fill are lowered now, as they are for data already on disk, and the spec planned again.
        var plan = checked.plan
        let fitted = fitBatches(&spec, trainCount: data.train.count, testCount: data.test.count)
        if !fitted.isEmpty {
            if !quiet { writeError(DiagnosticRenderer.text(fitted, sources: [checked.source.path: checked.source], color: stderrIsTerminal)) }
            guard let replanned = planForHost(spec, threads: plan.target.threads, isa: kernels.isa, options: plan.options).plan else {
                throw CommandFailure.invalid("mlpc: error: \(spec.path): the spec does not plan with batches sized by the data")
            }
            plan = replanned
        }
        // From here on Ctrl-C and SIGTERM only ask training to stop after its current step, which then
        // writes a checkpoint: before the run directory is filled in, so that no signal can leave a run
        // without one. (While the data loads, which may mean downloading it, they end mlpc at once,
        // removing a run directory this run created.)
        let interrupt = InterruptFlag.install()
        let run: TrainingRun
        do {
            run = try TrainingRun(
                spec: spec, plan: plan, kernels: kernels, data: data,
                options: .init(epochs: epochs, seed: seed, outputDirectory: outputDirectory, mlpcVersion: MLPC.version), ranks: ranks)
        } catch let error as RuntimeError {
            // An error located in the spec (a layer's line) names the file itself.
            if case .located = error { throw CommandFailure.invalid("mlpc: error: \(error)") }
            throw CommandFailure.invalid("mlpc: error: \(spec.path): \(error)")
        } catch {
            throw CommandFailure.invalid("mlpc: error: \(spec.path): \(error)")
        }
        if let checkpoint {
            do {
                try run.resume(
                    from: Checkpoint.read(path: checkpoint, plan: plan), path: checkpoint, recordedSpecSHA256: recordedSpecSHA256)
            } catch {
                throw commandFailure(for: error)
            }
        }
        do {
            try run.agreeAcrossRanks()
        } catch let disagreement as RanksDisagree {
            // Every rank found the same disagreement: each says so and they end together.
            ranks?.finish()
            throw CommandFailure.invalid("mlpc: error: rank \(ranks?.rank ?? 0) of \(ranks?.size ?? 1): \(disagreement)")
        }
        do {
            // Only now, with the spec planned and the data loaded and verified, does the directory change.
            try directory?.beginRun()
            try run.prepareOutput()
        } catch {
            throw CommandFailure.usage("\(error)")
        }
        let output = RunOutput(stopRequested: { interrupt.isSet })
        if !quiet {
            output.line(
                "training \(spec.name.value): \(grouped(plan.parameterCount)) parameters, \(trainingImages(run)), batch \(plan.globalBatchSize)\(ranksText(plan)), \(plan.target.threads) thread\(plan.target.threads == 1 ? "" : "s"), \(kernels.isa) kernels, arena \(formatBytes(plan.arenaBytes))"
            )
            if let partial = run.partialEpoch {
                output.line("resuming \(outputDirectory) at epoch \(partial.epoch), step \(partial.stepsDone + 1)")
            } else if checkpoint != nil {
                output.line("resuming \(outputDirectory) after epoch \(run.completedEpochs)")
            }
        }
        let progress = ProgressBar(enabled: !quiet && isatty(2) == 1)
        run.trainer.onStep = { step, steps in progress.update(step: step, of: steps) }
        run.trainer.stopRequested = { interrupt.isSet }
        do {
            if run.nextEpoch <= epochs {
                for epoch in run.nextEpoch...epochs {
                    let m = try run.runEpoch(epoch)
                    progress.clear()
                    if !quiet, let r = m.regression {
                        output.line(
                            String(
                                format: "Epoch [%d/%d], Loss: %.4f  (mean %.4f, test MAE %.4g, RMSE %.4g, R² %.4f, %.3f s, %@ samples/s%@)",
                                epoch, epochs, m.lastLoss, m.meanLoss, r.mae, r.rmse, r.r2, m.seconds, grouped(Int(m.samplesPerSecond)),
                                m.allreduceSecondsPerStep.map { String(format: ", allreduce %.0f us/step", $0 * 1e6) } ?? ""))
                    } else if !quiet {
                        output.line(
                            String(
                                format: "Epoch [%d/%d], Loss: %.4f  (mean %.4f, test %.2f%%, %.3f s, %@ samples/s%@)", epoch, epochs,
                                m.lastLoss, m.meanLoss, m.testAccuracy, m.seconds, grouped(Int(m.samplesPerSecond)),
                                m.allreduceSecondsPerStep.map { String(format: ", allreduce %.0f us/step", $0 * 1e6) } ?? ""))
                    }
                }
            }
            let evaluation = try run.finish()
            ranks?.finish()
            if let r = evaluation.regression, writes {
                output.line(String(format: "Test MAE: %.4g, RMSE: %.4g, R²: %.4f (%d rows)", r.mae, r.rmse, r.r2, evaluation.total))
            } else if writes {
                let ci = accuracyConfidence95(correct: evaluation.correct, total: evaluation.total)
                output.line(String(format: "Accuracy: %.2f%% (95%% CI ±%.2f)", evaluation.accuracy, ci))
            }
            if !quiet { output.line("run directory: \(outputDirectory)") }
        } catch let error as RuntimeError {
            progress.clear()
            // A stop or a divergence is decided from sums every rank has: the ranks stop together, and the
            // first one reports.
            let collective: Bool
            if case .data = error { collective = false } else { collective = true }
            let failure: CommandFailure
            switch error {
            case .interrupted:
                run.recordStop(status: "interrupted", reason: "\(error)")
                let command = ranks.map { "mpirun -np \($0.size) mlpc run --resume" } ?? "mlpc run --resume"
                failure = CommandFailure(
                    message: writes ? "mlpc: \(error); checkpoint saved to \(run.checkpointPath)\nresume with: \(command) \(outputDirectory)" : "",
                    status: 3)
            default:
                run.recordStop(status: "diverged", reason: "\(error)")
                failure = CommandFailure(
                    message: writes || !collective ? "mlpc: error: \(error)\nrun record: \(outputDirectory)/run.json" : "", status: 3)
            }
            guard let ranks, collective else { throw failure }
            // Said before MPI_Finalize: mpirun, when it was asked to stop the job, ends its ranks soon after.
            if !failure.message.isEmpty { writeError(terminalSafe(failure.message) + "\n") }
            ranks.finish()
            throw CommandFailure(message: "", status: failure.status)
        } catch let error as CommandFailure {
            throw error
        } catch {
            progress.clear()
            run.recordStop(status: "failed", reason: "\(error)")
            throw CommandFailure.usage("\(error)")
        }
    }
}

/// ", 32 on each of 2 ranks" for a data-parallel plan.
func ranksText(_ plan: Plan) -> String {
    guard let parallel = plan.dataParallel else { return "" }
    return " (at most \(plan.batchSize) on each of \(parallel.ranks) ranks)"
}

/// "60000 training images", or with a validation split "54000 training images (6000 held out for validation)".
func trainingImages(_ run: TrainingRun) -> String {
    let used = run.trainer.trainingExamples
    let held = run.data.train.count - used
    let what = run.data.tablePreprocessing == nil ? "images" : "rows"
    return "\(used) training \(what)" + (held > 0 ? " (\(held) held out for validation)" : "")
}

/// A one-line progress bar on stderr with rate and ETA, redrawn at most ten times a second.
final class ProgressBar {
    let enabled: Bool
    var lastDraw: UInt64 = 0
    var epochStart: UInt64 = 0

    init(enabled: Bool) { self.enabled = enabled }

    func update(step: Int, of steps: Int) {
        guard enabled else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        if step == 1 { epochStart = now }
        guard now - lastDraw > 100_000_000 || step == steps else { return }
        lastDraw = now
        let width = 30
        let done = steps > 0 ? step * width / steps : width
        let elapsed = Double(now - epochStart) / 1e9
        let rate = elapsed > 0 ? Double(step) / elapsed : 0
        let eta = rate > 0 ? Double(steps - step) / rate : 0
        let bar = String(repeating: "=", count: done) + String(repeating: " ", count: width - done)
        writeError(String(format: "\r[%@] %d/%d  %.0f steps/s  ETA %.1f s ", bar, step, steps, rate, eta))
    }

    func clear() {
        guard enabled else { return }
        writeError("\r" + String(repeating: " ", count: 72) + "\r")
    }
}

/// SIGINT and SIGTERM set a flag; training finishes the current step and stops.
final class InterruptFlag {
    nonisolated(unsafe) static var flag: sig_atomic_t = 0
    static let shared = InterruptFlag()

    /// A signal the process was started ignoring (SIGINT of a job a shell put in the background)
    /// stays ignored, as it was before the handler would have been installed.
    static func install() -> InterruptFlag {
        if !signalIsIgnored(SIGINT) { signal(SIGINT) { _ in InterruptFlag.flag = 1 } }
        if !signalIsIgnored(SIGTERM) { signal(SIGTERM) { _ in InterruptFlag.flag = 1 } }
        return shared
    }

    var isSet: Bool { InterruptFlag.flag != 0 }
}

/// While the data loads, Ctrl-C and SIGTERM end mlpc at once with status 130, as the documentation
/// says (docs/reliability.md): after the run directory's own cleanup when it installed one (called as
/// for SIGINT, whose status is 130), otherwise directly. A signal the process ignores stays ignored.
enum StartupSignals {
    nonisolated(unsafe) static var cleanup: (@convention(c) (Int32) -> Void)?

    static func exitWithStatus130() {
        for number in [SIGINT, SIGTERM] where !signalIsIgnored(number) {
            let previous = signal(number, SIG_DFL)
            let isDefault = unsafeBitCast(previous, to: Int.self) == unsafeBitCast(SIG_DFL, to: Int.self)
            if !isDefault, let previous { cleanup = previous }
        }
        let handler: @convention(c) (Int32) -> Void = { _ in
            if let cleanup = StartupSignals.cleanup { cleanup(SIGINT) }
            _exit(130)
        }
        for number in [SIGINT, SIGTERM] where !signalIsIgnored(number) { signal(number, handler) }
    }
}
