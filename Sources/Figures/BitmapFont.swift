import Files

// A 5x7 pixel font for printable ASCII (32...126), drawn by hand for the figures mlpc writes, so
// that pictures need no font files or text rendering library. Glyphs are 5x8: seven rows above the
// baseline plus one descender row that only g, j, p, q and y use (without it "g" reads as "9").
// Each glyph sits in a 6x10 cell: one column of spacing to its right, two rows below.

/// The embedded 5x7 bitmap font (with a descender row, so 5x8 glyphs).
public enum BitmapFont {
    public static let glyphWidth = 5
    public static let glyphHeight = 8
    /// Horizontal distance from one character to the next, in font pixels.
    public static let advance = 6
    /// Vertical distance from one line to the next, in font pixels.
    public static let lineHeight = 10

    /// The rows of `character`'s glyph, top first; bit 4 of a row is its leftmost pixel. Characters
    /// outside printable ASCII have no glyph.
    public static func glyph(for character: Character) -> [UInt8]? {
        guard let ascii = character.asciiValue, ascii >= 32, ascii <= 126 else { return nil }
        return glyphs[Int(ascii) - 32]
    }

    /// Whether the glyph of `character` has its pixel at column `x` (0...4), row `y` (0...7) set.
    public static func isSet(_ character: Character, x: Int, y: Int) -> Bool {
        guard let rows = glyph(for: character), (0..<glyphWidth).contains(x), (0..<glyphHeight).contains(y) else {
            return false
        }
        return rows[y] & (1 << (glyphWidth - 1 - x)) != 0
    }

    /// The width in pixels of `text` drawn on one line at integer `scale` (no trailing spacing).
    public static func width(of text: String, scale: Int = 1) -> Int {
        guard !text.isEmpty else { return 0 }
        return (text.count * advance - 1) * max(1, scale)
    }

    /// The height in pixels of one line of text at `scale` (the glyph, without line spacing).
    public static func height(scale: Int = 1) -> Int { glyphHeight * max(1, scale) }

    /// Glyphs for ASCII 32...126 in order, parsed once from `table`.
    static let glyphs: [[UInt8]] = parseTable()

    private static func parseTable() -> [[UInt8]] {
        var result = [[UInt8]](repeating: [UInt8](repeating: 0, count: glyphHeight), count: 95)
        let lines = table.split(separator: "\n", omittingEmptySubsequences: false)
        var index = 0
        while index < lines.count {
            let line = lines[index]
            guard line.first == "=" else { index += 1; continue }
            let characters = Array(line.dropFirst())
            for row in 0..<glyphHeight where index + 1 + row < lines.count {
                let cells = lines[index + 1 + row].split(separator: " ")
                for (column, character) in characters.enumerated() where column < cells.count {
                    guard let ascii = character.asciiValue, ascii >= 32, ascii <= 126 else { continue }
                    var bits: UInt8 = 0
                    for pixel in cells[column].prefix(glyphWidth) { bits = bits << 1 | (pixel == "#" ? 1 : 0) }
                    result[Int(ascii) - 32][row] = bits
                }
            }
            index += 1 + glyphHeight
        }
        return result
    }

    // Blocks of up to eight glyphs: a line "=" followed by the block's characters, then the eight
    // rows of those glyphs side by side, five pixels each ('#' set, '.' clear), one space apart.
    private static let table = #"""
= !"#$%&'
..... ..#.. .#.#. .#.#. ..#.. ##... .##.. ..#..
..... ..#.. .#.#. .#.#. .#### ##..# #..#. ..#..
..... ..#.. .#.#. ##### #.#.. ...#. #.#.. .#...
..... ..#.. ..... .#.#. .###. ..#.. .#... .....
..... ..#.. ..... ##### ..#.# .#... #.#.# .....
..... ..... ..... .#.#. ####. #..## #..#. .....
..... ..#.. ..... .#.#. ..#.. ...## .##.# .....
..... ..... ..... ..... ..... ..... ..... .....
=()*+,-./
...#. .#... ..... ..... ..... ..... ..... .....
..#.. ..#.. ..#.. ..#.. ..... ..... ..... ....#
.#... ...#. #.#.# ..#.. ..... ..... ..... ...#.
.#... ...#. .###. ##### ..... ##### ..... ..#..
.#... ...#. #.#.# ..#.. .##.. ..... ..... .#...
..#.. ..#.. ..#.. ..#.. ..#.. ..... .##.. #....
...#. .#... ..... ..... .#... ..... .##.. .....
..... ..... ..... ..... ..... ..... ..... .....
=01234567
.###. ..#.. .###. ##### ...#. ##### ..##. #####
#...# .##.. #...# ...#. ..##. #.... .#... ....#
#..## ..#.. ....# ..#.. .#.#. ####. #.... ...#.
#.#.# ..#.. ...#. ...#. #..#. ....# ####. ..#..
##..# ..#.. ..#.. ....# ##### ....# #...# .#...
#...# ..#.. .#... #...# ...#. #...# #...# .#...
.###. .###. ##### .###. ...#. .###. .###. .#...
..... ..... ..... ..... ..... ..... ..... .....
=89:;<=>?
.###. .###. ..... ..... ...#. ..... .#... .###.
#...# #...# .##.. .##.. ..#.. ..... ..#.. #...#
#...# #...# .##.. .##.. .#... ##### ...#. ....#
.###. .#### ..... ..... #.... ..... ....# ...#.
#...# ....# .##.. .##.. .#... ##### ...#. ..#..
#...# ...#. .##.. ..#.. ..#.. ..... ..#.. .....
.###. .##.. ..... .#... ...#. ..... .#... ..#..
..... ..... ..... ..... ..... ..... ..... .....
=@ABCDEFG
.###. .###. ####. .###. ###.. ##### ##### .###.
#...# #...# #...# #...# #..#. #.... #.... #...#
....# #...# #...# #.... #...# #.... #.... #....
.##.# ##### ####. #.... #...# ####. ####. #.###
#.#.# #...# #...# #.... #...# #.... #.... #...#
#.#.# #...# #...# #...# #..#. #.... #.... #...#
.###. #...# ####. .###. ###.. ##### #.... .####
..... ..... ..... ..... ..... ..... ..... .....
=HIJKLMNO
#...# .###. ..### #...# #.... #...# #...# .###.
#...# ..#.. ...#. #..#. #.... ##.## #...# #...#
#...# ..#.. ...#. #.#.. #.... #.#.# ##..# #...#
##### ..#.. ...#. ##... #.... #.#.# #.#.# #...#
#...# ..#.. ...#. #.#.. #.... #...# #..## #...#
#...# ..#.. #..#. #..#. #.... #...# #...# #...#
#...# .###. .##.. #...# ##### #...# #...# .###.
..... ..... ..... ..... ..... ..... ..... .....
=PQRSTUVW
####. .###. ####. .#### ##### #...# #...# #...#
#...# #...# #...# #.... ..#.. #...# #...# #...#
#...# #...# #...# #.... ..#.. #...# #...# #...#
####. #...# ####. .###. ..#.. #...# #...# #.#.#
#.... #.#.# #.#.. ....# ..#.. #...# #...# #.#.#
#.... #..#. #..#. ....# ..#.. #...# .#.#. #.#.#
#.... .##.# #...# ####. ..#.. .###. ..#.. .#.#.
..... ..... ..... ..... ..... ..... ..... .....
=XYZ[\]^_
#...# #...# ##### .###. ..... .###. ..#.. .....
#...# #...# ....# .#... #.... ...#. .#.#. .....
.#.#. .#.#. ...#. .#... .#... ...#. #...# .....
..#.. ..#.. ..#.. .#... ..#.. ...#. ..... .....
.#.#. ..#.. .#... .#... ...#. ...#. ..... .....
#...# ..#.. #.... .#... ....# ...#. ..... .....
#...# ..#.. ##### .###. ..... .###. ..... #####
..... ..... ..... ..... ..... ..... ..... .....
=`abcdefg
.#... ..... #.... ..... ....# ..... ..##. .....
..#.. ..... #.... ..... ....# ..... .#..# .....
...#. .###. #.##. .###. .##.# .###. .#... .####
..... ....# ##..# #.... #..## #...# ###.. #...#
..... .#### #...# #.... #...# ##### .#... #...#
..... #...# #...# #...# #...# #.... .#... .####
..... .#### ####. .###. .#### .###. .#... ....#
..... ..... ..... ..... ..... ..... ..... .###.
=hijklmno
#.... ..#.. ...#. #.... .##.. ..... ..... .....
#.... ..... ..... #.... ..#.. ..... ..... .....
#.##. .##.. ..##. #..#. ..#.. ##.#. #.##. .###.
##..# ..#.. ...#. #.#.. ..#.. #.#.# ##..# #...#
#...# ..#.. ...#. ##... ..#.. #.#.# #...# #...#
#...# ..#.. ...#. #.#.. ..#.. #...# #...# #...#
#...# .###. #..#. #..#. .###. #...# #...# .###.
..... ..... .##.. ..... ..... ..... ..... .....
=pqrstuvw
..... ..... ..... ..... .#... ..... ..... .....
..... ..... ..... ..... .#... ..... ..... .....
####. .#### #.##. .###. ###.. #...# #...# #...#
#...# #...# ##..# #.... .#... #...# #...# #...#
#...# #...# #.... .###. .#... #...# #...# #.#.#
####. .#### #.... ....# .#..# #..## .#.#. #.#.#
#.... ....# #.... ####. ..##. .##.# ..#.. .#.#.
#.... ....# ..... ..... ..... ..... ..... .....
=xyz{|}~
..... ..... ..... ...#. ..#.. .#... .....
..... ..... ..... ..#.. ..#.. ..#.. .....
#...# #...# ##### ..#.. ..#.. ..#.. .#...
.#.#. #...# ...#. .#... ..#.. ...#. #.#.#
..#.. #...# ..#.. ..#.. ..#.. ..#.. ...#.
.#.#. .#### .#... ..#.. ..#.. ..#.. .....
#...# ....# ##### ...#. ..#.. .#... .....
..... .###. ..... ..... ..... ..... .....
"""#
}
