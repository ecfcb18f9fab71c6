import ArgumentParser
import Foundation
import Planner
import Runtime
import SpecParser

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Train and evaluate a spec, writing run.json, metrics.jsonl and a copy of the spec to the run directory.",
        discussion: "Exit status: 0 trained, 1 invalid spec or data, 2 unusable arguments or path, 3 training diverged or was interrupted."
    )

    @OptionGroup var options: SpecOptions

    @Option(help: "Epochs to train (default: the spec's training.epochs).")
    var epochs: Int?

    @Option(name: .customLong("batch-size"), help: "Batch size (default: the spec's training.batch_size).")
    var batchSize: Int?

    @Option(help: "Worker threads (default: the spec's training.threads, else all cores).")
    var threads: Int?

    @Option(help: "Random seed for initialisation, shuffling and dropout (default: the spec's seed).")
    var seed: UInt64?

    @Option(help: "Run directory (default: runs/<spec name>/).")
    var out: String?

    @Flag(help: "Print only the final accuracy line.")
    var quiet = false

    func validate() throws {
        if let epochs, epochs < 1 || epochs > 1_000_000 { throw ValidationError("--epochs must be between 1 and 1000000") }
        if let batchSize, batchSize < 1 || batchSize > 1 << 20 { throw ValidationError("--batch-size must be between 1 and 1048576") }
        if let threads, threads < 1 || threads > 1024 { throw ValidationError("--threads must be between 1 and 1024") }
    }

    func run() throws {
        let checked = try checkSpecWithOverrides()
        let spec = checked.spec
        if !quiet { printWarnings(checked) }
        let kernels = try selectedKernels()
        let epochs = self.epochs ?? spec.training.epochs.value
        let data: LoadedData
        do {
            data = try loadData(spec: spec, plan: checked.plan, log: { if !quiet { writeError($0 + "\n") } })
        } catch {
            throw CommandFailure.invalid("mlpc: error: \(error)")
        }
        let outputDirectory = out ?? "runs/\(spec.name.value)"
        let run = try TrainingRun(
            spec: spec, plan: checked.plan, kernels: kernels, data: data,
            options: .init(epochs: epochs, seed: seed ?? spec.seed.value, outputDirectory: outputDirectory, mlpcVersion: MLPC.version))
        do {
            try run.prepareOutput()
        } catch {
            throw CommandFailure.usage("\(error)")
        }
        if !quiet {
            print(
                "training \(spec.name.value): \(grouped(checked.plan.parameterCount)) parameters, \(data.train.count) training images, batch \(checked.plan.batchSize), \(checked.plan.target.threads) thread\(checked.plan.target.threads == 1 ? "" : "s"), \(kernels.isa) kernels, arena \(formatBytes(checked.plan.arenaBytes))"
            )
        }
        let progress = ProgressBar(enabled: !quiet && isatty(2) == 1)
        run.trainer.onStep = { step, steps in progress.update(step: step, of: steps) }
        let interrupt = InterruptFlag.install()
        run.trainer.stopRequested = { interrupt.isSet }
        do {
            for epoch in 1...epochs {
                let m = try run.runEpoch(epoch)
                progress.clear()
                if !quiet {
                    print(
                        String(
                            format: "Epoch [%d/%d], Loss: %.4f  (mean %.4f, test %.2f%%, %.3f s, %@ samples/s)", epoch, epochs,
                            m.lastLoss, m.meanLoss, m.testAccuracy, m.seconds, grouped(Int(m.samplesPerSecond))))
                }
            }
            let evaluation = try run.finish()
            let ci = accuracyConfidence95(correct: evaluation.correct, total: evaluation.total)
            print(String(format: "Accuracy: %.2f%% (95%% CI ±%.2f)", evaluation.accuracy, ci))
            if !quiet { print("run directory: \(outputDirectory)") }
        } catch let error as RuntimeError {
            progress.clear()
            switch error {
            case .interrupted:
                run.recordStop(status: "interrupted", reason: "\(error)")
            default:
                run.recordStop(status: "diverged", reason: "\(error)")
            }
            throw CommandFailure(message: "mlpc: error: \(error)\nrun record: \(outputDirectory)/run.json", status: 3)
        }
    }

    /// Flags override the spec before planning, so the plan is made for what will actually run.
    func checkSpecWithOverrides() throws -> CheckedSpec {
        try checkSpec(options, threads: threads, format: .text, probeData: false, batchSize: batchSize)
    }
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

    static func install() -> InterruptFlag {
        signal(SIGINT) { _ in InterruptFlag.flag = 1 }
        signal(SIGTERM) { _ in InterruptFlag.flag = 1 }
        return shared
    }

    var isSet: Bool { InterruptFlag.flag != 0 }
}
