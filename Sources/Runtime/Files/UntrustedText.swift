// Names and values read from a file (a tensor name in a safetensors header, a metadata value, a path
// recorded in a model) go into messages a terminal shows. Printed raw, an ESC sequence in one can clear
// the screen or recolour what follows, a NUL or a carriage return can hide text, and a bidirectional
// override can make a name read differently from what it is. Every such message passes the text
// through `escapedForMessage`, so what the user sees is exactly what the file says, byte for byte.

/// `text` with everything a terminal would act on written as a visible escape, Swift style:
/// control characters (C0, DEL, C1) and the Unicode format characters that reorder or hide text
/// become `\u{1B}`, `\u{0}`, ...; tab, newline and carriage return become `\t`, `\n`, `\r`; the
/// backslash and both quote characters are escaped, so a quoted name cannot end its quotes early.
/// Printable text, including non-ASCII letters, is kept as it is.
public func escapedForMessage(_ text: String) -> String {
    var out = ""
    out.reserveCapacity(text.utf8.count)
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\\": out += "\\\\"
        case "\"": out += "\\\""
        case "'": out += "\\'"
        case "\t": out += "\\t"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        default:
            if needsEscape(scalar) {
                out += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out
}

/// Control characters, and the invisible format characters that change how the text around them
/// is shown: bidirectional embeddings, overrides and isolates, zero-width characters, the BOM.
private func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
    switch scalar.value {
    case 0x00...0x1F, 0x7F...0x9F: return true
    case 0x200B...0x200F, 0x202A...0x202E, 0x2060...0x2069, 0xFEFF: return true
    default: return false
    }
}
