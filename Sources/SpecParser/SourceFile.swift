/// A spec file's text, kept for rendering diagnostics with their source lines.
public struct SourceFile: Sendable, Equatable {
    public let path: String
    /// The file's bytes decoded as UTF-8; invalid sequences become U+FFFD (for display only).
    public let text: String
    /// Where each line starts in `text`; lines end at LF, CRLF, CR, NEL, LS or PS, the breaks libyaml
    /// counts, so its line numbers and these lines agree.
    private let lineStarts: [String.Index]

    public init(path: String, text: String) {
        self.path = path
        self.text = text
        var starts = [text.startIndex]
        var index = text.startIndex
        // Walk unicode scalars, not Characters: "\r\n" is one Character, and grapheme breaking
        // on hostile bytes is slow.
        let scalars = text.unicodeScalars
        while index < text.endIndex {
            let scalar = scalars[index]
            let next = scalars.index(after: index)
            if scalar == "\n" || scalar == "\u{85}" || scalar == "\u{2028}" || scalar == "\u{2029}" {
                starts.append(next)
            } else if scalar == "\r" {
                if next < text.endIndex, scalars[next] == "\n" {
                    index = next
                    continue
                }
                starts.append(next)
            }
            index = next
        }
        self.lineStarts = starts
    }

    public init(path: String, bytes: [UInt8]) {
        self.init(path: path, text: String(decoding: bytes, as: UTF8.self))
    }

    /// The number of lines (a final line break does not start a new, empty line).
    public var lineCount: Int {
        if let last = lineStarts.last, last == text.endIndex, lineStarts.count > 1 {
            return lineStarts.count - 1
        }
        return lineStarts.count
    }

    /// Line `n` (1-based) without its line break, or nil when the file has no such line.
    public func line(_ n: Int) -> Substring? {
        guard n >= 1, n <= lineCount else { return nil }
        let start = lineStarts[n - 1]
        var end = n < lineStarts.count ? lineStarts[n] : text.endIndex
        let scalars = text.unicodeScalars
        while end > start {
            let previous = scalars.index(before: end)
            let scalar = scalars[previous]
            guard scalar == "\n" || scalar == "\r" || scalar == "\u{85}" || scalar == "\u{2028}"
                || scalar == "\u{2029}"
            else { break }
            end = previous
        }
        return text[start..<end]
    }
}
