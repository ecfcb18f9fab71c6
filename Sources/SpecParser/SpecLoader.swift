#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// What loading a spec produced. `fileError` (the path could not be read as a spec file) and
/// `diagnostics` (the file's content has problems) are separate because the command line treats
/// them differently; `spec` is set only when no diagnostic is an error.
public struct SpecLoadResult: Sendable {
    public var spec: Spec?
    public var diagnostics: [Diagnostic]
    /// The file's text, for rendering the diagnostics; nil when the file could not be read.
    public var source: SourceFile?
    /// Why the path could not be read: missing, a directory, unreadable, too large.
    public var fileError: String?

    public init(spec: Spec?, diagnostics: [Diagnostic], source: SourceFile?, fileError: String?) {
        self.spec = spec
        self.diagnostics = diagnostics
        self.source = source
        self.fileError = fileError
    }
}

/// Reads a spec file: bytes -> YAML tree (YAMLReader) -> Spec (SpecDecoder).
public enum SpecLoader {
    /// Specs are a few kilobytes; refusing anything over 1 MiB bounds the time and memory spent
    /// on a wrong or hostile path before parsing starts.
    public static let maximumFileSize = 1 << 20

    /// EF BB BF, U+FEFF encoded in UTF-8.
    static let utf8ByteOrderMark: [UInt8] = [0xEF, 0xBB, 0xBF]

    /// Loads the spec at `path`. `dataDirectoryOverride` (from --data-dir or MLPC_DATA_DIR) replaces
    /// `data.dir` as given, without resolving it against the spec's folder.
    public static func load(path: String, dataDirectoryOverride: String? = nil) -> SpecLoadResult {
        switch readFile(path) {
        case .success(let bytes):
            return parse(bytes: bytes, path: path, dataDirectoryOverride: dataDirectoryOverride)
        case .failure(let error):
            return SpecLoadResult(spec: nil, diagnostics: [], source: nil, fileError: error.message)
        }
    }

    /// The bytes of the spec file at `path`, read as `load` reads them, or why they cannot be read
    /// (the same message as `SpecLoadResult.fileError`): for a caller that parses them itself.
    public static func readSpecFile(path: String) -> Result<[UInt8], SpecFileError> {
        readFile(path).mapError { SpecFileError(message: $0.message) }
    }

    /// Parses spec bytes as if read from `path` (used for messages and to resolve `data.dir`).
    public static func parse(bytes: [UInt8], path: String, dataDirectoryOverride: String? = nil) -> SpecLoadResult {
        guard bytes.count <= maximumFileSize else {
            return SpecLoadResult(
                spec: nil, diagnostics: [], source: nil, fileError: tooLargeMessage(path: path, size: bytes.count))
        }
        // YAML 1.2 allows a byte-order mark at the start of a stream (Windows Notepad writes one). It is
        // not part of the text: dropping it here keeps it out of the source lines, `Spec.sourceText` and
        // every column (line 1 column 1 is the first character after it). libyaml itself would skip it
        // but count it as a column, which moves the first key right of the keys below it.
        let hasByteOrderMark = bytes.starts(with: SpecLoader.utf8ByteOrderMark)
        let text = hasByteOrderMark ? Array(bytes.dropFirst(SpecLoader.utf8ByteOrderMark.count)) : bytes
        let source = SourceFile(path: path, bytes: text)
        let tree = YAMLReader.read(
            text, file: path, fileOffsetOfFirstByte: hasByteOrderMark ? SpecLoader.utf8ByteOrderMark.count : 0)
        var diagnostics = tree.diagnostics
        var spec: Spec?
        if let root = tree.root {
            var decoder = SpecDecoder(file: path)
            spec = decoder.decode(root: root, sourceText: source.text, dataDirectoryOverride: dataDirectoryOverride)
            diagnostics += inFileOrder(decoder.diagnostics.finished)
        } else if tree.diagnostics.isEmpty {
            // No document at all: an empty file, or only comments.
            diagnostics.append(.error(
                SpecDiagnosticCode.emptySpec, "the spec is empty; it needs name, data, model, loss, optimizer and training",
                at: SourceLocation(file: path, line: 1, column: 1)))
        }
        let all = diagnostics
        return SpecLoadResult(spec: all.hasErrors ? nil : spec, diagnostics: all, source: source, fileError: nil)
    }

    /// Sorts by line and column as a compiler reports (the decoder goes section by section); the
    /// sort is stable, and diagnostics without a location stay last.
    static func inFileOrder(_ diagnostics: [Diagnostic]) -> [Diagnostic] {
        diagnostics.enumerated().sorted { a, b in
            switch (a.element.location, b.element.location) {
            case (let x?, let y?):
                if x.line != y.line { return x.line < y.line }
                if x.column != y.column { return x.column < y.column }
                return a.offset < b.offset
            case (.some, nil): return true
            case (nil, .some): return false
            case (nil, nil): return a.offset < b.offset
            }
        }.map(\.element)
    }

    private struct FileError: Error {
        var message: String
    }

    /// A spec path that cannot be read, with the message `SpecLoadResult.fileError` gives.
    public struct SpecFileError: Error, Sendable {
        public var message: String
    }

    private static func tooLargeMessage(path: String, size: Int) -> String {
        "'\(path)' is too large for a spec (\(size) bytes; the limit is \(maximumFileSize) bytes)"
    }

    /// Reads a regular file of at most `maximumFileSize` bytes (`readRegularFileBytes`: FIFOs and
    /// devices such as /dev/zero neither hang nor flood the reader), in the spec's own words.
    private static func readFile(_ path: String) -> Result<[UInt8], FileError> {
        readRegularFileBytes(path: path, limit: maximumFileSize).mapError { failure in
            switch failure {
            case .cannotOpen(let code): return FileError(message: "cannot open '\(path)': \(String(cString: strerror(code)))")
            case .cannotRead(let code): return FileError(message: "cannot read '\(path)': \(String(cString: strerror(code)))")
            case .directory: return FileError(message: "'\(path)' is a directory, not a spec file")
            case .notRegular: return FileError(message: "'\(path)' is not a regular file")
            case .tooLarge(let size), .grewPastLimit(let size): return FileError(message: tooLargeMessage(path: path, size: size))
            }
        }
    }
}
