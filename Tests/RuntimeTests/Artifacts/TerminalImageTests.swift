import XCTest

@testable import Runtime
@testable import Figures
@testable import Files
@testable import DataSources
@testable import Execution

final class TerminalImageTests: XCTestCase {
    func testASCIIDrawsEachPixelTwiceWideFromDarkToLight() {
        let text = terminalImage(pixels: [0, 255, 128, 30], width: 2, height: 2, style: .ascii)
        XCTAssertEqual(text, "  @@\n++..\n")
    }

    func testBlocksPackTwoRowsPerLineWithGrayColours() {
        let text = terminalImage(pixels: [10, 20, 30, 40, 50, 60], width: 2, height: 3, style: .blocks)
        let lines = text.split(separator: "\n")
        XCTAssertEqual(lines.count, 2)
        XCTAssertTrue(lines[0].hasPrefix("\u{1B}[38;2;10;10;10m\u{1B}[48;2;30;30;30m\u{2580}"), String(lines[0]))
        XCTAssertTrue(lines[1].contains("\u{1B}[38;2;60;60;60m\u{1B}[48;2;0;0;0m\u{2580}"), String(lines[1]))
        XCTAssertTrue(lines[1].hasSuffix("\u{1B}[0m"))
    }

    func testMissingPixelsReadAsBlack() {
        XCTAssertEqual(terminalImage(pixels: [255], width: 2, height: 1, style: .ascii), "@@  \n")
    }
}
