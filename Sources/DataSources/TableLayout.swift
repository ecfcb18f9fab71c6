import Files
import SpecParser

/// Where each column the spec names sits in a CSV file's header, checked before any row is read.
public struct TableLayout: Sendable {
    public struct Column: Sendable {
        public var name: String
        public var type: ColumnType
        public var missing: MissingValues
        /// 0-based position in the file's records.
        public var position: Int
    }
    /// The feature columns in encoding order (the spec's, or the file's for the columns left to default).
    public var features: [Column]
    public var targets: [Column]
    /// Fields per record (the header's).
    public var fields: Int
    public var header: [String]
}

/// Problems with the table or its rows, each already located ("train.csv:12:3: ..."), at most
/// `TableProblems.limit` kept, all counted.
public struct TableError: Error, CustomStringConvertible {
    public var messages: [String]
    public var total: Int
    /// Problems that belong to the spec (a column it names that the file lacks), as diagnostics.
    public var diagnostics: [Diagnostic]

    public init(messages: [String], total: Int, diagnostics: [Diagnostic] = []) {
        self.messages = messages
        self.total = total
        self.diagnostics = diagnostics
    }

    public var description: String {
        var lines = messages + diagnostics.map { d in d.location.map { "\($0): \(d.message)" } ?? d.message }
        if total > messages.count + diagnostics.count {
            lines.append("... and \(total - messages.count - diagnostics.count)\(total >= TableProblems.countLimit ? " or more" : "") more problems (the first \(messages.count) are shown)")
        }
        return lines.joined(separator: "\n")
    }
}

/// Collects located problems, keeping the first `limit`.
struct TableProblems {
    static let limit = 20
    /// Counting stops here: a file this wrong is not the table the spec describes.
    static let countLimit = 100_000
    var messages: [String] = []
    var total = 0
    var isFull: Bool { total >= TableProblems.countLimit }

    mutating func add(_ message: String) {
        total += 1
        if messages.count < TableProblems.limit { messages.append(message) }
    }
}

/// A cell's text for a message: quoted, at most 40 characters, bytes that are not printable UTF-8 as \xNN.
func cellText(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
    let shown = bytes.prefix(40)
    var out = "'"
    if let text = String(validating: shown, as: UTF8.self), !text.unicodeScalars.contains(where: { $0.value < 0x20 || $0 == "\u{7F}" }) {
        out += text
    } else {
        for byte in shown {
            if byte >= 0x20 && byte < 0x7F { out.unicodeScalars.append(UnicodeScalar(byte)) } else { out += "\\x" + String(byte, radix: 16, uppercase: true).leftPadded(2) }
        }
    }
    return out + (bytes.count > 40 ? "...'" : "'")
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}

/// How a CSV file is written: its delimiter and whether its first row names the columns.
public struct CSVFormat: Sendable {
    public var delimiter: UInt8
    public var header: Bool
    /// Cell texts read as an empty cell.
    public var missingValues: [String]

    public init(delimiter: UInt8, header: Bool, missingValues: [String] = []) {
        self.delimiter = delimiter
        self.header = header
        self.missingValues = missingValues
    }

    public init(_ table: TableSpec) {
        self.init(delimiter: table.delimiter.value, header: table.header.value, missingValues: table.missingValues.map(\.value))
    }
}

/// Reads the first record of `path`: the column names (or, without a header row, 1...n).
public func readTableHeader(path: String, format: CSVFormat) throws -> [String] {
    let reader = try CSVReader(path: path, delimiter: format.delimiter)
    var names: [String] = []
    var problems = TableProblems()
    var fields = 0
    do {
        try reader.read(
            field: { bytes, index, line in
                let raw = bytes.map { Array($0) } ?? []
                if let name = String(validating: raw, as: UTF8.self) {
                    names.append(name)
                } else {
                    names.append("")
                    problems.add("\(pathForMessage(path)):\(line):\(index + 1): the column name is not valid UTF-8")
                }
            },
            record: { count, _ in
                fields = count
                return false
            })
    } catch let failure as CSVReader.Failure {
        throw TableError(messages: [located(path, failure)], total: 1)
    }
    if !problems.messages.isEmpty { throw TableError(messages: problems.messages, total: problems.total) }
    guard fields > 0 else { throw TableError(messages: ["\(pathForMessage(path)):1: the file is empty: no header row"], total: 1) }
    return format.header ? names : (1...fields).map(String.init)
}

func located(_ path: String, _ failure: CSVReader.Failure) -> String {
    "\(pathForMessage(path)):\(failure.line):" + (failure.column.map { "\($0):" } ?? "") + " \(failure.message)"
}

/// Checks the spec's columns against a header: every named column present (a did-you-mean otherwise),
/// no name twice in the header when the spec needs it, and no feature left when all are ignored.
public func resolveTableLayout(header: [String], path: String, table: TableSpec) throws -> TableLayout {
    var positions: [String: Int] = [:]
    var messages: [String] = []
    for (index, name) in header.enumerated() {
        if let first = positions[name] {
            messages.append("\(pathForMessage(path)):1:\(index + 1): duplicate column name '\(name)' (also column \(first + 1)); each column needs its own name")
        } else {
            positions[name] = index
        }
    }
    if !messages.isEmpty { throw TableError(messages: messages, total: messages.count) }
    var diagnostics: [Diagnostic] = []
    func position(of name: Located<String>) -> Int? {
        if let position = positions[name.value] { return position }
        let help = suggestion(for: name.value, among: header).map { "did you mean '\($0)'?" }
        let shown = header.prefix(12).map { "'\($0)'" }.joined(separator: ", ") + (header.count > 12 ? ", ..." : "")
        diagnostics.append(
            .error(
                "E0410", "\(pathForMessage(path)) has no column '\(name.value)'", at: name.location,
                notes: [DiagnosticNote("its header: \(shown)")], suggestion: help))
        return nil
    }
    var targets: [TableLayout.Column] = []
    for name in table.target.columns {
        if let at = position(of: name) {
            targets.append(TableLayout.Column(name: name.value, type: table.target.type.value, missing: .error, position: at))
        }
    }
    var features: [TableLayout.Column] = []
    if let columns = table.columns {
        for column in columns {
            if let at = position(of: column.name) {
                features.append(TableLayout.Column(name: column.name.value, type: column.type.value, missing: column.missing.value, position: at))
            }
        }
    } else {
        for name in table.ignore { _ = position(of: name) }
        let excluded = Set(table.target.columns.map(\.value) + table.ignore.map(\.value))
        for (index, name) in header.enumerated() where !excluded.contains(name) {
            features.append(TableLayout.Column(name: name, type: .number, missing: .error, position: index))
        }
        if features.isEmpty && diagnostics.isEmpty {
            diagnostics.append(.error("E0411", "\(pathForMessage(path)) has no feature column left: every column is a target or ignored", at: table.location))
        }
    }
    if !diagnostics.isEmpty { throw TableError(messages: [], total: diagnostics.count, diagnostics: diagnostics) }
    return TableLayout(features: features, targets: targets, fields: header.count, header: header)
}
