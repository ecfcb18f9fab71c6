import Files
import DataSources
import Foundation
import Planner

/// A benchmark's results with what they were measured on: what `mlpc bench` prints.
public struct BenchmarkResult: Codable, Equatable, Sendable {
    public var specName: String
    public var kernelSet: String
    public var threads: Int
    public var cpu: String
    /// Where the batches came from: a dataset directory, or "synthetic".
    public var data: String
    public var report: StepBenchmark.Report
    /// The matrix-product kernel on a large square product, one entry per thread count the plan uses.
    public var peaks: [MatmulPeak]

    public init(
        specName: String, kernelSet: String, threads: Int, cpu: String, data: String, report: StepBenchmark.Report, peaks: [MatmulPeak]
    ) {
        self.specName = specName
        self.kernelSet = kernelSet
        self.threads = threads
        self.cpu = cpu
        self.data = data
        self.report = report
        self.peaks = peaks
    }

    /// The peak a kernel split over `threads` parts is measured against (the closest thread count measured).
    public func peak(threads: Int) -> MatmulPeak? {
        peaks.min { abs($0.threads - threads) < abs($1.threads - threads) }
    }

    /// The share of the median step a kernel's median takes, in percent.
    public func share(_ kernel: StepBenchmark.KernelTiming) -> Double {
        report.stepSeconds > 0 ? 100 * kernel.seconds / report.stepSeconds : 0
    }

    /// The rate of a matrix-product kernel against the peak for its thread count, in percent.
    public func percentOfPeak(_ kernel: StepBenchmark.KernelTiming) -> Double? {
        guard let mm = kernel.matmul, let peak = peak(threads: min(mm.threads, threads)), peak.gflops > 0 else { return nil }
        return 100 * kernel.gflops / peak.gflops
    }

    /// The table `mlpc bench` prints.
    public var text: String {
        let r = report
        var out = "bench \(specName): batch \(r.batchSize), \(threads) thread\(threads == 1 ? "" : "s"), \(kernelSet) kernels, \(cpu)\n"
        out += "data: \(data); \(r.warmupSteps) warm-up steps, then medians of \(r.measuredSteps) steps\n"
        if !peaks.isEmpty {
            out += "matmul peak (this kernel set, fastest \(peaks[0].size)x\(peaks[0].size)x\(peaks[0].size) product): "
            out += peaks.map { String(format: "%.0f GFLOP/s on %d thread%@", $0.gflops, $0.threads, $0.threads == 1 ? "" : "s") }
                .joined(separator: ", ") + "\n"
        }
        out += "\n"
        var rows: [[String]] = [["kernel", "m x k x n", "threads", "us", "fastest", "GFLOP/s", "of peak", "share"]]
        for k in r.kernels {
            let shape = k.matmul.map { "\($0.m)x\($0.k)x\($0.n)" } ?? ""
            let threadsText = k.matmul.map { "\(min($0.threads, threads))" } ?? ""
            rows.append([
                k.label, shape, threadsText, String(format: "%.1f", k.seconds * 1e6), String(format: "%.1f", k.fastestSeconds * 1e6),
                String(format: "%.1f", k.gflops),
                percentOfPeak(k).map { String(format: "%.0f%%", $0) } ?? "", String(format: "%.1f%%", share(k)),
            ])
        }
        let sum = r.kernelSecondsSum
        rows.append(["kernels (sum of medians)", "", "", String(format: "%.1f", sum * 1e6), "", "", "", ""])
        rows.append([
            "step", "", "", String(format: "%.1f", r.stepSeconds * 1e6), String(format: "%.1f", r.fastestStepSeconds * 1e6),
            String(format: "%.1f", r.stepGFLOPs), "", "100.0%",
        ])
        out += alignedTable(rows, rightAligned: [2, 3, 4, 5, 6, 7])
        let matmulSeconds = r.kernels.filter { $0.matmul != nil }.reduce(0) { $0 + $1.seconds }
        out += String(
            format: "\nmatrix products %.1f us of the step (%.0f%%); the step's time beyond the kernels' medians: %.1f us\n",
            matmulSeconds * 1e6, r.stepSeconds > 0 ? 100 * matmulSeconds / r.stepSeconds : 0, (r.stepSeconds - sum) * 1e6)
        if let window = r.prefetchWindow, window.upperBound <= r.kernels.count, !window.isEmpty {
            let overlapped = r.kernels[window].reduce(0) { $0 + $1.seconds }
            out += String(
                format: "batch prefetch: whole steps gather the next batch on another thread during kernels %d-%d (%@ ... %@, %.1f us);\n",
                window.lowerBound, window.upperBound - 1, r.kernels[window.lowerBound].label, r.kernels[window.upperBound - 1].label,
                overlapped * 1e6)
            out += "  \(grouped(r.prefetchedSteps)) of \(grouped(r.measuredSteps)) measured steps found their batch gathered (the table times the gather on its own)\n"
        }
        if let live = r.liveFeatures {
            out += "\(live.layer): \(live.live) of \(live.features) features were live in the warm-up; the measured steps store them first,"
            out += " as training does after its first epoch (the others' weight gradient and optimizer work is skipped where whole vectors"
            out += " are idle; the GFLOP/s above count the skipped work as done)\n"
        }
        if let shifted = r.shiftedInput {
            if shifted.skipsZeros {
                out += String(
                    format: "%@: %.1f%% of the data's pixels are nonzero; its products loop over those in batches where at most half are"
                        + " (the input's shift is folded into the layer; the GFLOP/s above count the skipped work as done)\n",
                    shifted.layer, 100 * shifted.nonzeroFraction)
            } else {
                out += "\(shifted.layer): --disable-pass sparse-input, its products multiply every pixel (the same bits)\n"
            }
        }
        out += String(
            format: "epoch: %.3f s (%@ steps x the median step, %@ samples; training steps only, no evaluation)\n", r.epochSeconds,
            grouped(r.stepsPerEpoch), grouped(r.epochSamples))
        out += String(
            format: "mean step %.1f us: %.3f s an epoch of consecutive steps, other processes' bursts included\n",
            r.meanStepSeconds * 1e6, Double(r.stepsPerEpoch) * r.meanStepSeconds)
        return out
    }

    /// The same results as JSON, with the derived rates written out.
    public var json: String {
        let r = report
        var kernels: [[String: Any]] = []
        for k in r.kernels {
            var entry: [String: Any] = [
                "index": k.index, "label": k.label, "flops": k.flops, "microseconds": k.seconds * 1e6,
                "fastest_microseconds": k.fastestSeconds * 1e6, "gflops": k.gflops,
                "share_percent": share(k),
            ]
            if let mm = k.matmul {
                entry["matmul"] = ["m": mm.m, "k": mm.k, "n": mm.n, "threads": min(mm.threads, threads)]
                if let p = percentOfPeak(k) { entry["percent_of_peak"] = p }
            }
            kernels.append(entry)
        }
        let object: [String: Any] = [
            "spec": specName, "kernels_isa": kernelSet, "threads": threads, "cpu": cpu, "data": data,
            "batch_size": r.batchSize, "warmup_steps": r.warmupSteps, "measured_steps": r.measuredSteps,
            "step_microseconds": r.stepSeconds * 1e6, "fastest_step_microseconds": r.fastestStepSeconds * 1e6,
            "mean_step_microseconds": r.meanStepSeconds * 1e6,
            "step_gflops": r.stepGFLOPs, "flops_per_step": r.flopsPerStep, "steps_per_epoch": r.stepsPerEpoch,
            "epoch_samples": r.epochSamples, "epoch_seconds": r.epochSeconds, "kernels": kernels,
            "prefetched_steps": r.prefetchedSteps,
            "shifted_input": r.shiftedInput.map {
                ["layer": $0.layer, "nonzero_fraction": $0.nonzeroFraction, "skips_zeros": $0.skipsZeros] as [String: Any]
            } ?? NSNull(),
            "live_features": r.liveFeatures.map { ["layer": $0.layer, "features": $0.features, "live": $0.live] as [String: Any] } ?? NSNull(),
            "prefetch_window": r.prefetchWindow.map { [$0.lowerBound, $0.upperBound - 1] as Any } ?? NSNull(),
            "matmul_peaks": peaks.map { ["size": $0.size, "threads": $0.threads, "gflops": $0.gflops] as [String: Any] },
        ]
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]),
            let text = String(data: data, encoding: .utf8)
        else { return "{}\n" }
        return text + "\n"
    }
}

/// Columns separated by two spaces, left-aligned except the given ones; the first row is a header,
/// underlined.
func alignedTable(_ rows: [[String]], rightAligned: Set<Int>) -> String {
    let columns = rows.map(\.count).max() ?? 0
    var widths = [Int](repeating: 0, count: columns)
    for row in rows {
        for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) }
    }
    func line(_ row: [String]) -> String {
        var cells: [String] = []
        for i in 0..<columns {
            let cell = i < row.count ? row[i] : ""
            let pad = String(repeating: " ", count: widths[i] - cell.count)
            cells.append(rightAligned.contains(i) ? pad + cell : cell + pad)
        }
        var text = cells.joined(separator: "  ")
        while text.hasSuffix(" ") { text.removeLast() }
        return text
    }
    var out = ""
    for (i, row) in rows.enumerated() {
        out += line(row) + "\n"
        if i == 0 { out += String(repeating: "-", count: widths.reduce(0, +) + 2 * max(0, columns - 1)) + "\n" }
    }
    return out
}
