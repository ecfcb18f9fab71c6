import Files

// A gray image drawn with text, for `mlpc show`: Unicode upper-half blocks whose foreground is the
// upper pixel and background the lower one (24-bit colour escapes, two pixel rows per text line), or
// ASCII shades from dark to light, each pixel two characters wide so the digit keeps its proportions.

public enum TerminalImageStyle: String, Sendable, CaseIterable {
    case blocks, ascii
}

/// The ASCII ramp, from black (0) to white (255).
public let asciiShades: [Character] = [" ", ".", ":", "-", "=", "+", "*", "#", "%", "@"]

/// The image (`width` x `height` gray bytes, row-major; missing bytes read as black) as lines of text.
public func terminalImage(pixels: [UInt8], width: Int, height: Int, style: TerminalImageStyle) -> String {
    func pixel(_ x: Int, _ y: Int) -> UInt8 {
        let index = y * width + x
        return index >= 0 && index < pixels.count ? pixels[index] : 0
    }
    var lines: [String] = []
    switch style {
    case .ascii:
        for y in 0..<max(0, height) {
            var line = ""
            for x in 0..<max(0, width) {
                let shade = asciiShades[Int(pixel(x, y)) * asciiShades.count / 256]
                line.append(shade)
                line.append(shade)
            }
            lines.append(line)
        }
    case .blocks:
        for y in stride(from: 0, to: max(0, height), by: 2) {
            var line = ""
            for x in 0..<max(0, width) {
                let top = pixel(x, y)
                let bottom = y + 1 < height ? pixel(x, y + 1) : 0
                line += "\u{1B}[38;2;\(top);\(top);\(top)m\u{1B}[48;2;\(bottom);\(bottom);\(bottom)m\u{2580}"
            }
            lines.append(line + "\u{1B}[0m")
        }
    }
    return lines.joined(separator: "\n") + "\n"
}
