import CYaml

/// Turns spec bytes into a `YAMLNode` tree with libyaml. This is the only file that touches libyaml:
/// its types stay private here, and its 0-based marks (lines, and columns counted in characters)
/// become 1-based lines and byte columns here.
///
/// The reader accepts the YAML a spec needs and refuses, with a diagnostic, what could make a
/// hostile file expensive: anchors and aliases (no "billion laughs"), nesting deeper than
/// `maximumDepth` (checked while consuming events, so the tree is never deeper), tags and more than
/// one document. The first such problem, or the first syntax error, ends reading.
enum YAMLReader {
    /// A spec nests about seven levels (root, model, layers, item, parameters, activation, ...).
    static let maximumDepth = 64

    struct Output {
        /// The document's root, or nil when reading stopped at a problem or there was no document.
        var root: YAMLNode?
        var diagnostics: [Diagnostic]
    }

    /// `fileOffsetOfFirstByte` is where `bytes` start in the file (3 when the caller dropped a
    /// byte-order mark), so byte offsets in messages name the file's own bytes.
    static func read(_ bytes: [UInt8], file: String, fileOffsetOfFirstByte: Int = 0) -> Output {
        var builder = TreeBuilder(file: file, marks: MarkConverter(bytes: bytes, file: file))
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) != 0 else {
            return Output(root: nil, diagnostics: [.error(SpecDiagnosticCode.yamlSyntax, "the YAML parser could not start (out of memory)", at: nil)])
        }
        defer { yaml_parser_delete(&parser) }
        // libyaml asserts a non-null input pointer, even for zero bytes.
        let storage: [UInt8] = bytes.isEmpty ? [0] : bytes
        storage.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            yaml_parser_set_input_string(&parser, base, bytes.count)
            // Fixing the encoding keeps UTF-16 files out: every mark is then a UTF-8 position.
            yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
            var event = yaml_event_t()
            while !builder.isFinished {
                guard yaml_parser_parse(&parser, &event) != 0 else {
                    builder.fail(parserProblem(parser, marks: &builder.marks, fileOffsetOfFirstByte: fileOffsetOfFirstByte))
                    break
                }
                builder.consume(event)
                yaml_event_delete(&event)
            }
        }
        return Output(root: builder.failed ? nil : builder.root, diagnostics: builder.diagnostics)
    }

    private static func parserProblem(
        _ parser: yaml_parser_t, marks: inout MarkConverter, fileOffsetOfFirstByte: Int
    ) -> Diagnostic {
        let problem = parser.problem.map { String(cString: $0) } ?? "unknown problem"
        switch parser.error {
        case YAML_READER_ERROR:
            // Reader errors carry a byte offset rather than a mark.
            let location = marks.location(byteOffset: Int(parser.problem_offset))
            var message = "the spec is not valid UTF-8 text: \(problem)"
            if parser.problem_value != -1 {
                message += " (byte 0x\(String(UInt32(truncatingIfNeeded: parser.problem_value), radix: 16, uppercase: true)) at offset \(Int(parser.problem_offset) + fileOffsetOfFirstByte))"
            }
            return .error(SpecDiagnosticCode.notText, message, at: location)
        case YAML_MEMORY_ERROR:
            return .error(SpecDiagnosticCode.yamlSyntax, "the YAML parser ran out of memory", at: nil)
        default:
            var notes: [DiagnosticNote] = []
            if let context = parser.context.map({ String(cString: $0) }) {
                notes.append(DiagnosticNote(context, at: marks.location(parser.context_mark)))
            }
            return .error(
                SpecDiagnosticCode.yamlSyntax, "YAML syntax error: \(problem)", at: marks.location(parser.problem_mark),
                notes: notes)
        }
    }
}

/// Assembles nodes from events without recursion: an explicit stack of open collections.
private struct TreeBuilder {
    /// An open collection. Mutated in place through `stack[top]`, so appending never copies the
    /// items (a popped-and-pushed enum payload would, making long lists quadratic).
    private struct Frame {
        var isMapping: Bool
        var location: SourceLocation
        var items: [YAMLNode] = []
        var entries: [YAMLNode.Entry] = []
        var pendingKey: YAMLScalar?
    }

    let file: String
    var marks: MarkConverter
    var root: YAMLNode?
    var diagnostics: [Diagnostic] = []
    private(set) var isFinished = false
    private(set) var failed = false
    private var stack: [Frame] = []
    private var documentCount = 0

    init(file: String, marks: MarkConverter) {
        self.file = file
        self.marks = marks
    }

    mutating func fail(_ diagnostic: Diagnostic) {
        diagnostics.append(diagnostic)
        failed = true
        isFinished = true
    }

    mutating func consume(_ event: yaml_event_t) {
        let location = marks.location(event.start_mark)
        switch event.type {
        case YAML_DOCUMENT_START_EVENT:
            documentCount += 1
            if documentCount > 1 {
                fail(.error(
                    SpecDiagnosticCode.multipleDocuments, "a spec is a single YAML document, but a second one starts here",
                    at: location))
            }
        case YAML_ALIAS_EVENT:
            let name = event.data.alias.anchor.map { String(cString: $0) } ?? ""
            fail(.error(
                SpecDiagnosticCode.anchorOrAlias, "YAML aliases (*\(name)) are not supported in a spec; write the value out",
                at: location))
        case YAML_SCALAR_EVENT:
            let data = event.data.scalar
            guard checkPlain(anchor: data.anchor, tag: data.tag, at: location) else { return }
            let value = data.value.map { String(decoding: UnsafeBufferPointer(start: $0, count: data.length), as: UTF8.self) } ?? ""
            let style: YAMLNode.ScalarStyle = data.style == YAML_PLAIN_SCALAR_STYLE ? .plain : .quoted
            attach(YAMLNode(content: .scalar(YAMLScalar(value: value, style: style, location: location)), location: location))
        case YAML_SEQUENCE_START_EVENT:
            let data = event.data.sequence_start
            guard checkPlain(anchor: data.anchor, tag: data.tag, at: location), open(at: location) else { return }
            stack.append(Frame(isMapping: false, location: location))
        case YAML_MAPPING_START_EVENT:
            let data = event.data.mapping_start
            guard checkPlain(anchor: data.anchor, tag: data.tag, at: location), open(at: location) else { return }
            stack.append(Frame(isMapping: true, location: location))
        case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
            guard let frame = stack.popLast() else { return }
            let content: YAMLNode.Content = frame.isMapping ? .mapping(frame.entries) : .sequence(frame.items)
            attach(YAMLNode(content: content, location: frame.location))
        case YAML_STREAM_END_EVENT:
            isFinished = true
        default:
            // Stream start, document end: nothing to build.
            break
        }
    }

    /// Refuses anchors (`&name`) and tags (`!!int`): a spec needs neither, and refusing anchors
    /// outright keeps alias expansion impossible.
    private mutating func checkPlain(
        anchor: UnsafeMutablePointer<yaml_char_t>?, tag: UnsafeMutablePointer<yaml_char_t>?, at location: SourceLocation
    ) -> Bool {
        if let anchor {
            let name = String(cString: anchor)
            fail(.error(
                SpecDiagnosticCode.anchorOrAlias, "YAML anchors (&\(name)) are not supported in a spec; write the value out",
                at: location))
            return false
        }
        if let tag {
            let name = String(cString: tag)
            fail(.error(
                SpecDiagnosticCode.tag, "YAML tags ('\(name)') are not supported in a spec; the key decides the type",
                at: location))
            return false
        }
        return true
    }

    /// Checks a collection may open here: within the depth bound, and not as a mapping key.
    private mutating func open(at location: SourceLocation) -> Bool {
        if stack.count >= YAMLReader.maximumDepth {
            fail(.error(
                SpecDiagnosticCode.nestingTooDeep,
                "the spec nests deeper than \(YAMLReader.maximumDepth) levels; a spec needs fewer than ten",
                at: location))
            return false
        }
        if let top = stack.last, top.isMapping, top.pendingKey == nil {
            fail(.error(SpecDiagnosticCode.nonScalarKey, "a mapping key must be a plain name, not a list or mapping", at: location))
            return false
        }
        return true
    }

    private mutating func attach(_ node: YAMLNode) {
        guard !stack.isEmpty else {
            root = node
            return
        }
        let top = stack.count - 1
        guard stack[top].isMapping else {
            stack[top].items.append(node)
            return
        }
        if let key = stack[top].pendingKey {
            stack[top].entries.append(YAMLNode.Entry(key: key, value: node))
            stack[top].pendingKey = nil
        } else if let key = node.scalar {
            stack[top].pendingKey = key
        }
        // A collection as a key was refused when it opened.
    }
}

/// Converts libyaml's marks (0-based line, 0-based column counted in characters) to 1-based lines and
/// 1-based byte columns. Events arrive in file order, so a cursor on the current line makes each
/// conversion cost only the distance from the previous one, even on a very long line.
private struct MarkConverter {
    let file: String
    private let bytes: [UInt8]
    /// Byte offset where each line starts; breaks as libyaml counts them (LF, CRLF, CR, NEL, LS, PS).
    private let lineStarts: [Int]
    private var cursor = (line: 0, characterColumn: 0, byteOffset: 0)

    init(bytes: [UInt8], file: String) {
        self.file = file
        self.bytes = bytes
        var starts = [0]
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            var breakLength = 0
            if byte == 0x0A {
                breakLength = 1
            } else if byte == 0x0D {
                breakLength = index + 1 < bytes.count && bytes[index + 1] == 0x0A ? 2 : 1
            } else if byte == 0xC2, index + 1 < bytes.count, bytes[index + 1] == 0x85 {
                breakLength = 2
            } else if byte == 0xE2, index + 2 < bytes.count, bytes[index + 1] == 0x80,
                bytes[index + 2] == 0xA8 || bytes[index + 2] == 0xA9
            {
                breakLength = 3
            }
            if breakLength > 0 {
                index += breakLength
                starts.append(index)
            } else {
                index += 1
            }
        }
        self.lineStarts = starts
    }

    mutating func location(_ mark: yaml_mark_t) -> SourceLocation {
        let line = min(Int(mark.line), lineStarts.count - 1)
        let column = Int(mark.column)
        if cursor.line != line || cursor.characterColumn > column {
            cursor = (line, 0, lineStarts[line])
        }
        let lineEnd = line + 1 < lineStarts.count ? lineStarts[line + 1] : bytes.count
        var offset = cursor.byteOffset
        var characters = cursor.characterColumn
        while characters < column, offset < lineEnd {
            offset += MarkConverter.sequenceLength(bytes[offset])
            characters += 1
        }
        offset = min(offset, lineEnd)
        cursor = (line, characters, offset)
        return SourceLocation(file: file, line: line + 1, column: offset - lineStarts[line] + 1)
    }

    func location(byteOffset: Int) -> SourceLocation {
        let offset = max(0, min(byteOffset, bytes.count))
        // The last line start at or before the offset.
        var low = 0
        var high = lineStarts.count - 1
        while low < high {
            let middle = (low + high + 1) / 2
            if lineStarts[middle] <= offset { low = middle } else { high = middle - 1 }
        }
        return SourceLocation(file: file, line: low + 1, column: offset - lineStarts[low] + 1)
    }

    /// The length of the UTF-8 sequence a lead byte starts (1 for a stray continuation byte).
    private static func sequenceLength(_ lead: UInt8) -> Int {
        switch lead {
        case 0xF0...0xF7: return 4
        case 0xE0...0xEF: return 3
        case 0xC0...0xDF: return 2
        default: return 1
        }
    }
}
