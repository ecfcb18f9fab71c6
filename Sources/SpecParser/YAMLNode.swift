/// The YAML subset a spec uses, as a tree: every node knows where it starts in the file.
/// Built by `YAMLReader` (the only code that touches libyaml); decoded by `SpecDecoder`.
struct YAMLNode: Sendable {
    enum ScalarStyle: Sendable {
        /// Unquoted: may be read as a number, a boolean or null.
        case plain
        /// Quoted or block (`|`, `>`): always a string.
        case quoted
    }

    struct Entry: Sendable {
        var key: YAMLScalar
        var value: YAMLNode
    }

    enum Content: Sendable {
        case scalar(YAMLScalar)
        case sequence([YAMLNode])
        /// Entries in file order, duplicates included (the decoder reports them).
        case mapping([Entry])
    }

    var content: Content
    var location: SourceLocation
}

struct YAMLScalar: Sendable {
    var value: String
    var style: YAMLNode.ScalarStyle
    var location: SourceLocation

    /// YAML 1.2 core schema null: an empty plain scalar, `~` or `null`.
    var isNull: Bool {
        style == .plain && (value.isEmpty || value == "~" || value == "null" || value == "Null" || value == "NULL")
    }
}

extension YAMLNode {
    var scalar: YAMLScalar? {
        if case .scalar(let scalar) = content { return scalar }
        return nil
    }

    var isNull: Bool { scalar?.isNull ?? false }

    /// How the node reads in a message: `'abc'`, `a list`, `a mapping`, `no value`.
    var shortDescription: String {
        switch content {
        case .scalar(let scalar):
            if scalar.isNull { return "no value" }
            let quoted = scalar.style == .quoted ? "the quoted string " : ""
            return quoted + quote(scalar.value)
        case .sequence: return "a list"
        case .mapping: return "a mapping"
        }
    }
}

/// `'text'` for messages: long values are shortened and control characters escaped, so a hostile
/// scalar cannot flood or garble the terminal.
func quote(_ text: String, limit: Int = 40) -> String {
    var result = "'"
    var count = 0
    for scalar in text.unicodeScalars {
        if count == limit {
            result += "..."
            break
        }
        count += 1
        appendEscapingControlCharacter(scalar, to: &result)
    }
    return result + "'"
}

/// `text` with what a terminal would act on written as visible escapes, Swift style: control
/// characters (C0, DEL, C1) and the invisible format characters that reorder or hide text (bidirectional
/// embeddings, overrides and isolates, zero-width characters, the BOM) become `\u{1B}`, `\u{202E}`, ...;
/// newline, tab and carriage return become `\n`, `\t`, `\r`. With `escapingQuotes`, the backslash and
/// both quote characters are escaped too, so a quoted name cannot end its quotes early. Printable
/// text, non-ASCII letters included, is kept as it is.
public func escapingControlCharacters(_ text: String, escapingQuotes: Bool = false) -> String {
    guard text.unicodeScalars.contains(where: { needsEscape($0) || (escapingQuotes && isQuoteOrBackslash($0)) }) else { return text }
    var result = ""
    for scalar in text.unicodeScalars {
        if escapingQuotes && isQuoteOrBackslash(scalar) {
            result += "\\" + String(scalar)
        } else {
            appendEscapingControlCharacter(scalar, to: &result)
        }
    }
    return result
}

/// `escapingControlCharacters` line by line: the line breaks of a message laid out on several lines
/// stay (the diagnostics' text, mlpc's error messages), every other control character is escaped.
public func escapingControlCharactersKeepingLines(_ text: String) -> String {
    text.split(separator: "\n", omittingEmptySubsequences: false).map { escapingControlCharacters(String($0)) }.joined(separator: "\n")
}

private func isQuoteOrBackslash(_ scalar: Unicode.Scalar) -> Bool { scalar == "\\" || scalar == "\"" || scalar == "'" }

private func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
    switch scalar.value {
    case 0x00...0x1F, 0x7F...0x9F: return true
    case 0x200B...0x200F, 0x202A...0x202E, 0x2060...0x2069, 0xFEFF: return true
    default: return false
    }
}

private func appendEscapingControlCharacter(_ scalar: Unicode.Scalar, to result: inout String) {
    switch scalar.value {
    case 0x0A: result += "\\n"
    case 0x09: result += "\\t"
    case 0x0D: result += "\\r"
    case _ where needsEscape(scalar): result += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
    default: result.unicodeScalars.append(scalar)
    }
}
