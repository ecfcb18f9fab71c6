import Files

// An RGB drawing surface with just what mlpc's figures need: rectangles, lines, bitmap-font text
// and scaled gray images. Every drawing call clips to the canvas, so no coordinate can crash it.

/// An 8-bit sRGB colour.
public struct Color: Equatable, Hashable, Sendable {
    public var r: UInt8
    public var g: UInt8
    public var b: UInt8

    public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) {
        self.r = r
        self.g = g
        self.b = b
    }

    public static let white = Color(255, 255, 255)
    public static let black = Color(0, 0, 0)
    /// The red that marks a misclassified example.
    public static let red = Color(214, 39, 40)
    /// matplotlib's first two default line colours (tab:blue, tab:orange).
    public static let blue = Color(31, 119, 180)
    public static let orange = Color(255, 127, 14)
    public static let gridGray = Color(225, 225, 225)
    public static let axisGray = Color(80, 80, 80)

    /// BT.601 luma, 0...255, used to pick readable text over a coloured cell.
    public var luma: Int { (299 * Int(r) + 587 * Int(g) + 114 * Int(b) + 500) / 1000 }
}

/// How a gray level (0...255) is shown.
public enum ColorMap: Sendable, Equatable {
    /// 0 black, 255 white, as matplotlib's "gray" shows MNIST digits.
    case gray
    /// 0 near white to 255 dark blue, matplotlib's "Blues" (ColorBrewer 9-class stops).
    case blues

    private static let bluesStops: [Color] = [
        Color(247, 251, 255), Color(222, 235, 247), Color(198, 219, 239), Color(158, 202, 225), Color(107, 174, 214),
        Color(66, 146, 198), Color(33, 113, 181), Color(8, 81, 156), Color(8, 48, 107),
    ]

    public func color(for level: UInt8) -> Color {
        switch self {
        case .gray:
            return Color(level, level, level)
        case .blues:
            let stops = Self.bluesStops
            let position = Double(level) / 255 * Double(stops.count - 1)
            let lower = min(Int(position), stops.count - 2)
            let t = position - Double(lower)
            func mix(_ a: UInt8, _ b: UInt8) -> UInt8 { UInt8((Double(a) + (Double(b) - Double(a)) * t).rounded()) }
            let a = stops[lower], b = stops[lower + 1]
            return Color(mix(a.r, b.r), mix(a.g, b.g), mix(a.b, b.b))
        }
    }
}

/// An RGB image being drawn on; row by row, top first, 3 bytes per pixel.
public struct Canvas: Equatable, Sendable {
    public let width: Int
    public let height: Int
    public private(set) var pixels: [UInt8]

    /// A canvas filled with `background`; negative sizes count as 0.
    public init(width: Int, height: Int, background: Color = .white) {
        self.width = max(0, width)
        self.height = max(0, height)
        pixels = [UInt8](repeating: 0, count: self.width * self.height * 3)
        fillRect(x: 0, y: 0, width: self.width, height: self.height, color: background)
    }

    /// The colour at (x, y), or nil outside the canvas.
    public func pixel(x: Int, y: Int) -> Color? {
        guard x >= 0, y >= 0, x < width, y < height else { return nil }
        let i = (y * width + x) * 3
        return Color(pixels[i], pixels[i + 1], pixels[i + 2])
    }

    /// Sets one pixel; does nothing outside the canvas.
    public mutating func setPixel(x: Int, y: Int, color: Color) {
        guard x >= 0, y >= 0, x < width, y < height else { return }
        let i = (y * width + x) * 3
        pixels[i] = color.r
        pixels[i + 1] = color.g
        pixels[i + 2] = color.b
    }

    /// Fills the rectangle with its top-left corner at (x, y), clipped to the canvas.
    public mutating func fillRect(x: Int, y: Int, width w: Int, height h: Int, color: Color) {
        let x0 = max(0, x), y0 = max(0, y)
        let x1 = min(width, x.addingClamped(w)), y1 = min(height, y.addingClamped(h))
        guard x0 < x1, y0 < y1 else { return }
        for row in y0..<y1 {
            for column in x0..<x1 {
                let i = (row * width + column) * 3
                pixels[i] = color.r
                pixels[i + 1] = color.g
                pixels[i + 2] = color.b
            }
        }
    }

    /// Draws the outline of a rectangle, `thickness` pixels wide, inside its bounds.
    public mutating func strokeRect(x: Int, y: Int, width w: Int, height h: Int, color: Color, thickness: Int = 1) {
        let t = max(1, thickness)
        fillRect(x: x, y: y, width: w, height: min(t, h), color: color)
        fillRect(x: x, y: y.addingClamped(h - t), width: w, height: min(t, h), color: color)
        fillRect(x: x, y: y, width: min(t, w), height: h, color: color)
        fillRect(x: x.addingClamped(w - t), y: y, width: min(t, w), height: h, color: color)
    }

    /// Draws a straight line from (x0, y0) to (x1, y1) inclusive with Bresenham's algorithm; with
    /// `thickness` > 1 each point is a square brush of that size centred on the line.
    public mutating func drawLine(x0: Int, y0: Int, x1: Int, y1: Int, color: Color, thickness: Int = 1) {
        // Far-off endpoints would make the walk long; figures never draw outside a few canvases' size.
        let limit = UInt(4 * (width + height + 16))
        guard x0.magnitude <= limit, y0.magnitude <= limit, x1.magnitude <= limit, y1.magnitude <= limit else { return }
        let brush = max(1, thickness)
        let offset = (brush - 1) / 2
        let dx = abs(x1 - x0), dy = -abs(y1 - y0)
        let sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1
        var error = dx + dy
        var x = x0, y = y0
        while true {
            if brush == 1 {
                setPixel(x: x, y: y, color: color)
            } else {
                fillRect(x: x - offset, y: y - offset, width: brush, height: brush, color: color)
            }
            if x == x1 && y == y1 { break }
            let doubled = 2 * error
            if doubled >= dy { error += dy; x += sx }
            if doubled <= dx { error += dx; y += sy }
        }
    }

    /// Draws `text` on one line with its top-left corner at (x, y), each font pixel a
    /// `scale` x `scale` square. Characters outside printable ASCII are drawn as '?'.
    public mutating func drawText(_ text: String, x: Int, y: Int, scale: Int = 1, color: Color = .black) {
        let s = max(1, scale)
        var penX = x
        for character in text {
            let rows = BitmapFont.glyph(for: character) ?? BitmapFont.glyph(for: "?") ?? []
            for (row, bits) in rows.enumerated() {
                for column in 0..<BitmapFont.glyphWidth where bits & (1 << (BitmapFont.glyphWidth - 1 - column)) != 0 {
                    fillRect(x: penX + column * s, y: y + row * s, width: s, height: s, color: color)
                }
            }
            penX += BitmapFont.advance * s
        }
    }

    /// Draws `text` turned a quarter turn counter-clockwise (reading bottom to top, as a y-axis
    /// label), inside the box whose top-left corner is (x, y): the box is
    /// `BitmapFont.height(scale:)` wide and `BitmapFont.width(of:scale:)` tall.
    public mutating func drawTextRotated(_ text: String, x: Int, y: Int, scale: Int = 1, color: Color = .black) {
        let s = max(1, scale)
        let length = BitmapFont.width(of: text, scale: s)
        var pen = 0  // distance along the text from its start, in canvas pixels
        for character in text {
            let rows = BitmapFont.glyph(for: character) ?? BitmapFont.glyph(for: "?") ?? []
            for (row, bits) in rows.enumerated() {
                for column in 0..<BitmapFont.glyphWidth where bits & (1 << (BitmapFont.glyphWidth - 1 - column)) != 0 {
                    // Glyph column runs up the canvas from the bottom of the box; glyph row runs right.
                    let canvasX = x + row * s
                    let canvasY = y + length - (pen + (column + 1) * s)
                    fillRect(x: canvasX, y: canvasY, width: s, height: s, color: color)
                }
            }
            pen += BitmapFont.advance * s
        }
    }

    /// Draws `image` with its top-left corner at (x, y), each image pixel a `scale` x `scale`
    /// square; gray images are coloured through `colorMap`, RGB images drawn as they are.
    public mutating func drawImage(_ image: RasterImage, x: Int, y: Int, scale: Int = 1, colorMap: ColorMap = .gray) {
        let s = max(1, scale)
        for row in 0..<image.height {
            for column in 0..<image.width {
                let color: Color
                switch image.format {
                case .gray:
                    color = colorMap.color(for: image.sample(x: column, y: row))
                case .rgb:
                    color = Color(
                        image.sample(x: column, y: row, channel: 0), image.sample(x: column, y: row, channel: 1),
                        image.sample(x: column, y: row, channel: 2))
                }
                fillRect(x: x + column * s, y: y + row * s, width: s, height: s, color: color)
            }
        }
    }

    /// The canvas as an RGB image.
    public var image: RasterImage {
        RasterImage(checkedWidth: width, height: height, format: .rgb, pixels: pixels)
    }

    /// The canvas encoded as an 8-bit RGB PNG (throws for an empty canvas, which PNG cannot hold).
    public func pngBytes(path: String = "<memory>") throws -> [UInt8] {
        try encodePNG(image, path: path)
    }

    /// Writes the canvas as a PNG to `path` atomically.
    public func writePNG(to path: String) throws {
        try writeFileAtomically(pngBytes(path: path), to: path)
    }
}

extension Int {
    /// Addition that saturates instead of trapping, for clipping arithmetic on caller coordinates.
    fileprivate func addingClamped(_ other: Int) -> Int {
        let (sum, overflow) = addingReportingOverflow(other)
        if overflow { return other > 0 ? Int.max : Int.min }
        return sum
    }
}
