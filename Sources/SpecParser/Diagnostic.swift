/// Where something came from in a source file: 1-based line and column (columns count bytes).
public struct SourceLocation: Hashable, Codable, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String { "\(file):\(line):\(column)" }
}

/// A value together with the place in the spec that said it (or, for a default, the place of the
/// node the default belongs to), so any later stage can point back at the spec.
public struct Located<Value> {
    public var value: Value
    public var location: SourceLocation

    public init(_ value: Value, at location: SourceLocation) {
        self.value = value
        self.location = location
    }
}

extension Located: Equatable where Value: Equatable {}
extension Located: Hashable where Value: Hashable {}
extension Located: Sendable where Value: Sendable {}
extension Located: Codable where Value: Codable {}

public enum Severity: String, Codable, Sendable, Comparable {
    case error, warning, note

    private var rank: Int {
        switch self {
        case .error: return 2
        case .warning: return 1
        case .note: return 0
        }
    }
    public static func < (a: Severity, b: Severity) -> Bool { a.rank < b.rank }
}

/// A related place that helps explain a diagnostic ("the layer whose output does not fit").
public struct DiagnosticNote: Hashable, Codable, Sendable {
    public var message: String
    public var location: SourceLocation?

    public init(_ message: String, at location: SourceLocation? = nil) {
        self.message = message
        self.location = location
    }
}

/// A problem found in a spec, a data header or a plan. Plain data: stages produce these, the command
/// line renders them (text with a caret, or JSON) once, at the edge.
public struct Diagnostic: Hashable, Codable, Sendable {
    public var severity: Severity
    /// A stable code such as "E0203"; tests and users can rely on it.
    public var code: String
    public var message: String
    public var location: SourceLocation?
    public var notes: [DiagnosticNote]
    /// A concrete fix, e.g. "did you mean 'epochs'?".
    public var suggestion: String?

    public init(
        _ severity: Severity, code: String, _ message: String, at location: SourceLocation?,
        notes: [DiagnosticNote] = [], suggestion: String? = nil
    ) {
        self.severity = severity
        self.code = code
        self.message = message
        self.location = location
        self.notes = notes
        self.suggestion = suggestion
    }

    public static func error(
        _ code: String, _ message: String, at location: SourceLocation?, notes: [DiagnosticNote] = [],
        suggestion: String? = nil
    ) -> Diagnostic {
        Diagnostic(.error, code: code, message, at: location, notes: notes, suggestion: suggestion)
    }

    public static func warning(
        _ code: String, _ message: String, at location: SourceLocation?, notes: [DiagnosticNote] = [],
        suggestion: String? = nil
    ) -> Diagnostic {
        Diagnostic(.warning, code: code, message, at: location, notes: notes, suggestion: suggestion)
    }
}

extension Array where Element == Diagnostic {
    public var hasErrors: Bool { contains { $0.severity == .error } }
}
