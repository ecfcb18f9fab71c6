import Foundation

/// Renders diagnostics for people (compiler-style text with the source line and a caret) or for
/// programs (JSON). Stages only produce `Diagnostic` values; this is the one place that formats them.
public enum DiagnosticRenderer {
    /// Source lines longer than this are shown as a window around the column.
    static let maximumShownLineLength = 160

    /// ```
    /// specs/a.yaml:12:3: error: unknown key 'epoch' in 'training' [E0120]
    ///   epoch: 20
    ///   ^
    ///   help: did you mean 'epochs'?
    /// specs/a.yaml:3:1: note: ...
    /// ```
    /// A diagnostic without a location prints as `mlpc: error: message [CODE]`. Control characters in
    /// messages (a path or name from a file) are printed as escapes, never raw; line breaks stay (a
    /// message may list the files missing from a data directory, one per line).
    public static func text(_ diagnostics: [Diagnostic], sources: [String: SourceFile], color: Bool) -> String {
        let style = TextStyle(enabled: color)
        var output = ""
        for diagnostic in diagnostics {
            let label = style.severity(diagnostic.severity)
            let code = diagnostic.code.isEmpty ? "" : " [\(diagnostic.code)]"
            output += header(diagnostic.location, style: style) + label + " " + style.bold(escapingControlCharactersKeepingLines(diagnostic.message) + code) + "\n"
            output += excerpt(diagnostic.location, sources: sources, style: style)
            if let suggestion = diagnostic.suggestion {
                output += "  " + style.help("help:") + " " + escapingControlCharactersKeepingLines(suggestion) + "\n"
            }
            for note in diagnostic.notes {
                if note.location != nil {
                    output += header(note.location, style: style) + style.severity(.note) + " " + escapingControlCharactersKeepingLines(note.message) + "\n"
                    output += excerpt(note.location, sources: sources, style: style)
                } else {
                    output += "  " + style.severity(.note) + " " + escapingControlCharactersKeepingLines(note.message) + "\n"
                }
            }
        }
        return output
    }

    /// A JSON array of `{file, line, column, severity, code, message, notes: [{file, line, column,
    /// message}], suggestion}`; absent locations and suggestions are `null`.
    public static func json(_ diagnostics: [Diagnostic]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(diagnostics.map(JSONDiagnostic.init)) else { return "[]" }
        return String(decoding: data, as: UTF8.self)
    }

    private static func header(_ location: SourceLocation?, style: TextStyle) -> String {
        guard let location else { return style.bold("mlpc:") + " " }
        return style.bold("\(escapingControlCharacters(location.file)):\(location.line):\(location.column):") + " "
    }

    /// The source line and a caret under the column. Tabs in the line are repeated in the caret line
    /// so the caret lines up however the terminal sets tab stops.
    static func excerpt(_ location: SourceLocation?, sources: [String: SourceFile], style: TextStyle) -> String {
        guard let location, let line = sources[location.file]?.line(location.line) else { return "" }
        let bytes = Array(line.utf8)
        var caretByte = max(0, min(location.column - 1, bytes.count))
        var start = 0
        var end = bytes.count
        var prefix = ""
        var suffix = ""
        if bytes.count > maximumShownLineLength {
            // A window around the caret; cutting inside a character shows U+FFFD, which is fine here.
            start = max(0, caretByte - maximumShownLineLength / 2)
            end = min(bytes.count, start + maximumShownLineLength)
            if start > 0 { prefix = "..." }
            if end < bytes.count { suffix = "..." }
            caretByte -= start
        }
        let shown = String(decoding: bytes[start..<end], as: UTF8.self)
        let lead = String(decoding: bytes[start..<(start + caretByte)], as: UTF8.self)
        var padding = String(repeating: " ", count: prefix.count)
        for scalar in lead.unicodeScalars {
            padding += scalar == "\t" ? "\t" : " "
        }
        return prefix + displayable(shown) + suffix + "\n" + padding + style.caret("^") + "\n"
    }

    /// Control characters other than tab would move the cursor or recolour the terminal.
    private static func displayable(_ text: String) -> String {
        var result = ""
        result.unicodeScalars.reserveCapacity(text.unicodeScalars.count)
        for scalar in text.unicodeScalars {
            let isControl = scalar.value < 0x20 && scalar != "\t" || scalar.value == 0x7F
                || (0x80..<0xA0).contains(scalar.value)
            result.unicodeScalars.append(isControl ? "\u{FFFD}" : scalar)
        }
        return result
    }
}

/// ANSI colours as clang uses them: red errors, magenta warnings, cyan notes, green carets.
struct TextStyle {
    var enabled: Bool

    private func wrap(_ text: String, _ code: String) -> String {
        enabled ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text
    }

    func bold(_ text: String) -> String { wrap(text, "1") }
    func caret(_ text: String) -> String { wrap(text, "1;32") }
    func help(_ text: String) -> String { wrap(text, "1;36") }

    func severity(_ severity: Severity) -> String {
        switch severity {
        case .error: return wrap("error:", "1;31")
        case .warning: return wrap("warning:", "1;35")
        case .note: return wrap("note:", "1;30")
        }
    }
}

/// The JSON shape of a diagnostic, flat so any language reads it without knowing Swift's types.
private struct JSONDiagnostic: Encodable {
    struct Note: Encodable {
        var file: String?
        var line: Int?
        var column: Int?
        var message: String

        func encode(to encoder: Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(file, forKey: .file)
            try container.encode(line, forKey: .line)
            try container.encode(column, forKey: .column)
            try container.encode(message, forKey: .message)
        }

        enum CodingKeys: String, CodingKey { case file, line, column, message }
    }

    var file: String?
    var line: Int?
    var column: Int?
    var severity: String
    var code: String
    var message: String
    var notes: [Note]
    var suggestion: String?

    init(_ diagnostic: Diagnostic) {
        file = diagnostic.location?.file
        line = diagnostic.location?.line
        column = diagnostic.location?.column
        severity = diagnostic.severity.rawValue
        code = diagnostic.code
        message = diagnostic.message
        notes = diagnostic.notes.map {
            Note(file: $0.location?.file, line: $0.location?.line, column: $0.location?.column, message: $0.message)
        }
        suggestion = diagnostic.suggestion
    }

    // Written out so absent values appear as null rather than missing keys.
    func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(file, forKey: .file)
        try container.encode(line, forKey: .line)
        try container.encode(column, forKey: .column)
        try container.encode(severity, forKey: .severity)
        try container.encode(code, forKey: .code)
        try container.encode(message, forKey: .message)
        try container.encode(notes, forKey: .notes)
        try container.encode(suggestion, forKey: .suggestion)
    }

    enum CodingKeys: String, CodingKey { case file, line, column, severity, code, message, notes, suggestion }
}
