import Foundation
import XCTest

@testable import DataSources
@testable import SpecParser

/// Reading a file in byte ranges on several threads gives what one reading in order gives: the same
/// rows bit for bit, lines, category ids and located problems, whatever the split points hit.
final class CSVRangeReadingTests: XCTestCase {
    struct Reading: Equatable {
        var rows: [UInt32]
        var lines: [Int]
        var names: [[String]]
        var messages: [String]
        var total: Int
        var thrown: String?
    }

    let layout = TableLayout(
        features: [
            .init(name: "x", type: .number, missing: .error, position: 0),
            .init(name: "c", type: .category, missing: .mode, position: 1),
            .init(name: "b", type: .binary, missing: .dropRow, position: 2),
        ],
        targets: [.init(name: "y", type: .category, missing: .error, position: 3)], fields: 4, header: ["x", "c", "b", "y"])

    func read(_ text: String, threads: Int) throws -> Reading {
        let path = NSTemporaryDirectory() + "mlpc-range-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString).csv"
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let raw = RawRows(width: 4, limitBytes: 1 << 30)
        raw.lines = []
        var values = [InternedValues](repeating: InternedValues(), count: 4)
        var problems = TableProblems()
        var thrown: String?
        do {
            try readTableRows(
                path: path, format: CSVFormat(delimiter: 0x2C, header: true), layout: layout, into: raw, values: &values,
                problems: &problems, threads: threads, rangeBytes: 1)
        } catch { thrown = "\(error)" }
        let bits = (0..<raw.rows * 4).map { raw.row(0)[$0].bitPattern }
        return Reading(
            rows: bits, lines: raw.lines ?? [], names: values.map(\.names),
            messages: problems.messages.map { $0.replacingOccurrences(of: path, with: "F") }, total: problems.total, thrown: thrown)
    }

    func assertRangesReadAsInOrder(_ text: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let inOrder = try read(text, threads: 1)
        for threads in [2, 3, 4, 7] {
            XCTAssertEqual(try read(text, threads: threads), inOrder, "\(threads) threads", file: file, line: line)
        }
    }

    func testCleanRowsWithCategoriesFirstSeenInLaterRanges() throws {
        let text = "x,c,b,y\n" + (0..<3000).map { i in "\(Double(i) * 0.37 - 500),c\(i * 7919 % 113),\(i % 2),class\(i % 5 == 0 ? i % 17 : 1)\n" }.joined()
        let reading = try read(text, threads: 1)
        XCTAssertEqual(reading.rows.count, 3000 * 4)
        XCTAssertEqual(reading.total, 0)
        try assertRangesReadAsInOrder(text)
    }

    func testQuotedLineBreaksAtTheSplitPointsAreReadInOrder() throws {
        // Every row holds a quoted line break: some split point falls inside a quoted field.
        let text = "x,c,b,y\n" + (0..<2000).map { i in "\(i),\"a\nb,\(i % 9)\",\(i % 2),\"k\"\"\(i % 3)\"\n" }.joined()
        XCTAssertEqual(try read(text, threads: 1).total, 0)
        try assertRangesReadAsInOrder(text)
    }

    func testProblemsInLaterRangesKeepTheirLines() throws {
        var lines = (0..<4000).map { i in "\(i),c\(i % 4),\(i % 2),y\(i % 2)\n" }
        lines[3100] = "abc,c1,1,y1\n"
        lines[3500] = "1,c1,1\n"
        lines[2000] = "1,,1,y0\n"  // filled (mode): not a problem
        lines[2500] = "1,c2,,y0\n"  // dropped
        let text = "x,c,b,y\n" + lines.joined()
        let reading = try read(text, threads: 1)
        XCTAssertEqual(reading.total, 2)
        XCTAssertTrue(reading.messages[0].hasPrefix("F:3102:1: 'abc' is not a number"), reading.messages[0])
        try assertRangesReadAsInOrder(text)
    }

    func testCRLFBlankLinesAndNoFinalLineBreak() throws {
        let text = "x,c,b,y\r\n" + (0..<3000).map { i in (i % 50 == 0 ? "\r\n" : "") + "\(i),c\(i % 3),yes,y\(i % 2)" }.joined(separator: "\r\n")
        XCTAssertEqual(try read(text, threads: 1).rows.count, 3000 * 4)
        try assertRangesReadAsInOrder(text)
    }

    func testAnUnclosedQuoteAndANULByteInALaterRange() throws {
        let body = (0..<3000).map { i in "\(i),c,1,y\(i % 2)\n" }.joined()
        try assertRangesReadAsInOrder("x,c,b,y\n" + body + "5,\"c,1,y1\n" + body)
        try assertRangesReadAsInOrder("x,c,b,y\n" + body + "5,c\u{0},1,y1\n" + body)
    }
}
