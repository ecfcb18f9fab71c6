import ArgumentParser
import Foundation
import SpecParser

struct MLPC: ParsableCommand {
    static let version = "0.1.0"
    static let configuration = CommandConfiguration(
        commandName: "mlpc",
        abstract: "A declarative model-spec compiler and runner: check, plan and train a YAML spec.",
        version: version,
        subcommands: [
            CheckCommand.self, PlanCommand.self, RunCommand.self, EvalCommand.self, PredictCommand.self, ExportCommand.self, ShowCommand.self,
            BenchCommand.self,
        ]
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

/// An error message as the terminal gets it: its lines kept, every other control character escaped
/// (`\u{1B}`), so a path or a value from a file inside it cannot drive the terminal. The message's
/// own text has none; paths and values may (a checkpoint's data directory, a --data-dir argument).
func terminalSafe(_ message: String) -> String {
    escapingControlCharactersKeepingLines(message.hasSuffix("\n") ? String(message.dropLast()) : message)
}

func writeError(_ text: String) {
    FileHandle.standardError.write(Data(text.utf8))
}
