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

    func validate() throws {
        if let threads, threads < 1 || threads > 1024 { throw ValidationError("--threads must be between 1 and 1024") }
    }

    func run() throws {
        let checked = try checkSpec(
            options, threads: threads, format: format == .json ? .json : .text, probeData: false, planOptions: passes.planOptions)
        switch format {
        case .text:
            printWarnings(checked)
            print(PlanText.full(checked.plan), terminator: "")
        case .json:
            print(PlanText.json(checked.plan), terminator: "")
        case .dot:
            print(PlanText.dot(checked.plan), terminator: "")
        }
    }
}
