import ArgumentParser
import Planner

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Show the fused execution plan: kernels, buffers in the arena, tiles, threads and totals.",
        discussion: "Exit status: 0 planned, 1 invalid spec (diagnostics on stderr), 2 unusable arguments or path."
    )

    @OptionGroup var options: SpecOptions

    @Option(help: "Output format: text, json or dot (Graphviz).")
    var format: OutputFormat = .text

    @Option(parsing: .unconditional, help: "Plan for this many threads (default: the spec's training.threads, else all cores).")
    var threads: Int?

    @OptionGroup var passes: PassOptions

    @Option(
        parsing: .unconditional,
        help: "Plan for data-parallel training on this many processes (`mpirun -np N mlpc run`): each rank's share of a batch, the allreduce per step and a step-time estimate.")
    var ranks: Int = 1

    @Option(parsing: .unconditional, help: "Network bandwidth between ranks for the step estimate, in Gbit/s.")
    var bandwidth: Double = 10

    @Option(parsing: .unconditional, help: "Latency of one message between ranks for the step estimate, in microseconds.")
    var latency: Double = 20

    @Option(
        parsing: .unconditional,
        help: "Compute rate of one rank for the step estimate, in GFLOP/s of the plan's FLOPs (`mlpc bench` measures a step).")
    var gflops: Double = PlanCommand.defaultGflops

    /// The plan's FLOPs per second (work the sparse and live-first passes skip counted as done, as `mlpc
    /// bench` counts it) of the reference MLP's step on one thread of a 2-core Zen 4: 162 GFLOP/s, a
    /// 189 us step (`mlpc bench specs/mnist_mlp.yaml --threads 1`, 2026-12-06). `mlpc bench` measures
    /// a machine and a spec.
    static let defaultGflops: Double = 160

    func validate() throws {
        if let threads, threads < 1 || threads > 1024 { throw ValidationError("--threads must be between 1 and 1024") }
        if ranks < 1 || ranks > 65536 { throw ValidationError("--ranks must be between 1 and 65536") }
        for (flag, value) in [("--bandwidth", bandwidth), ("--gflops", gflops)] where !(value > 0 && value.isFinite) {
            throw ValidationError("\(flag) must be a positive number")
        }
        if !(latency >= 0 && latency.isFinite) { throw ValidationError("--latency must be a non-negative number") }
    }

    func run() throws {
        var planOptions = passes.planOptions
        planOptions.ranks = ranks
        let checked = try checkSpec(
            options, threads: threads, format: format == .json ? .json : .text, probeData: false, planOptions: planOptions)
        switch format {
        case .text:
            printWarnings(checked)
            print(PlanText.full(checked.plan), terminator: "")
            if ranks > 1 {
                print(
                    "\n" + PlanText.stepEstimate(checked.plan, gigabitsPerSecond: bandwidth, latencyMicroseconds: latency, gflops: gflops),
                    terminator: "")
            }
        case .json:
            print(PlanText.json(checked.plan), terminator: "")
        case .dot:
            print(PlanText.dot(checked.plan), terminator: "")
        }
    }
}
