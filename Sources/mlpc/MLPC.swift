import ArgumentParser
import Foundation

struct MLPC: ParsableCommand {
    static let version = "0.1.0"
    static let configuration = CommandConfiguration(
        commandName: "mlpc",
        abstract: "A declarative model-spec compiler and runner: check, plan and train a YAML spec.",
        version: version,
        subcommands: [CheckCommand.self, PlanCommand.self, RunCommand.self, EvalCommand.self, PredictCommand.self, ShowCommand.self, BenchCommand.self]
    )
}

/// An error the command line reports as one message with a chosen exit status.
struct CommandFailure: Error {
    var message: String
    var status: Int32

    static func usage(_ message: String) -> CommandFailure { CommandFailure(message: "mlpc: error: \(message)", status: 2) }
    static func invalid(_ message: String) -> CommandFailure { CommandFailure(message: message, status: 1) }
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json, dot
}

func writeError(_ text: String) {
    FileHandle.standardError.write(Data(text.utf8))
}
