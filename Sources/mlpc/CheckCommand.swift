import ArgumentParser
import Foundation
import Planner
import Runtime
import SpecParser

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate a spec statically: syntax, types, ranges, shapes, data headers and memory, without training.",
        discussion: "Exit status: 0 valid (warnings allowed), 1 invalid (diagnostics on stderr), 2 unusable arguments or path."
    )

    @OptionGroup var options: SpecOptions

    @Option(help: "Output format: text (summary and diagnostics) or json (diagnostics as a JSON array).")
    var format: TextOrJSONFormat = .text

    func validate() throws {
        if format == .dot { throw ValidationError("check prints text or json; use `mlpc plan --format dot` for a graph") }
    }

    func run() throws {
        let checked = try checkSpec(options, threads: nil, format: format == .json ? .json : .text, probeData: true)
        switch format {
        case .json:
            print(DiagnosticRenderer.json(checked.diagnostics))
        case .text, .dot:
            printWarnings(checked)
            if let table = checked.table { print(tableSummary(table.table), terminator: "") }
            print(PlanText.summary(checked.plan), terminator: "")
            print("\(checked.spec.path): ok")
        }
    }
}

/// The formats of `check` and `bench`: text and json, which help and completion list. `dot` is a
/// format of `plan`; it parses here only so that `validate()` can say so instead of a bare "invalid value".
enum TextOrJSONFormat: String, ExpressibleByArgument {
    case text, json, dot

    static var allValueStrings: [String] { [text.rawValue, json.rawValue] }
    var outputFormat: OutputFormat { self == .json ? .json : .text }
}
