import XCTest

@testable import Runtime
@testable import Figures
@testable import Files
@testable import DataSources
@testable import Execution

final class BitmapFontTests: XCTestCase {
    private let printable = (32...126).map { Character(Unicode.Scalar(UInt8($0))) }

    func testEveryPrintableCharacterHasAGlyphOfTheFontSize() {
        XCTAssertEqual(BitmapFont.glyphs.count, 95)
        for character in printable {
            let rows = BitmapFont.glyph(for: character)
            XCTAssertEqual(rows?.count, BitmapFont.glyphHeight, "\(character)")
            XCTAssertTrue(rows?.allSatisfy { $0 < 1 << BitmapFont.glyphWidth } ?? false, "\(character)")
        }
        XCTAssertNil(BitmapFont.glyph(for: "\u{7F}"))
        XCTAssertNil(BitmapFont.glyph(for: "é"))
    }

    func testEveryGlyphExceptSpaceHasPixels() {
        for character in printable {
            let lit = BitmapFont.glyph(for: character)?.reduce(0) { $0 + $1.nonzeroBitCount } ?? 0
            if character == " " {
                XCTAssertEqual(lit, 0)
            } else {
                XCTAssertGreaterThan(lit, 0, "'\(character)' is blank")
            }
        }
    }

    func testDigitsAndLettersAreDistinct() {
        for group in ["0123456789", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz"] {
            let glyphs = group.map { BitmapFont.glyph(for: $0) ?? [] }
            XCTAssertEqual(Set(glyphs).count, group.count, "two glyphs of \(group) are the same")
        }
        // The pairs a 5x7 font most easily confuses.
        for (a, b) in [("0", "O"), ("1", "l"), ("1", "I"), ("5", "S"), ("8", "B"), ("g", "9"), ("q", "9"), ("2", "Z")] {
            XCTAssertNotEqual(BitmapFont.glyph(for: Character(a)), BitmapFont.glyph(for: Character(b)), "\(a) vs \(b)")
        }
    }

    func testOnlyDescendersUseTheBottomRow() {
        let withDescender = printable.filter { (BitmapFont.glyph(for: $0)?.last ?? 0) != 0 }
        XCTAssertEqual(String(withDescender), "gjpqy")
    }

    func testKnownPixelsOfTheDigitOne() {
        // ..#.. / .##.. / ..#.. x4 / .###.
        XCTAssertTrue(BitmapFont.isSet("1", x: 2, y: 0))
        XCTAssertFalse(BitmapFont.isSet("1", x: 0, y: 0))
        XCTAssertTrue(BitmapFont.isSet("1", x: 1, y: 1))
        XCTAssertTrue(BitmapFont.isSet("1", x: 3, y: 6))
        XCTAssertFalse(BitmapFont.isSet("1", x: 7, y: 0))
    }

    func testTextWidthCountsAdvanceWithoutTrailingSpace() {
        XCTAssertEqual(BitmapFont.width(of: ""), 0)
        XCTAssertEqual(BitmapFont.width(of: "A"), 5)
        XCTAssertEqual(BitmapFont.width(of: "Label: 5"), 8 * 6 - 1)
        XCTAssertEqual(BitmapFont.width(of: "ab", scale: 3), 33)
    }
}
