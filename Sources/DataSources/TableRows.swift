import Files
import Foundation
import SpecParser

/// Rows as read from a CSV file, before any statistic: per row one float per feature column, then one
/// per target column. A number is its value, a binary 0 or 1, a category its id in the column's
/// `InternedValues`; NaN marks an empty cell. One buffer grown with realloc (which moves large blocks
/// by remapping pages, not copying them), released page by page as the rows are encoded.
final class RawRows {
    let width: Int
    private(set) var base: UnsafeMutablePointer<Float>?
    private(set) var rows = 0
    private var capacity = 0
    /// The file line of each row, when kept (prediction names its rows by them).
    var lines: [Int]? = nil
    /// The most bytes the buffer may grow to (the machine's memory).
    let limitBytes: Int

    init(width: Int, limitBytes: Int) {
        self.width = width
        self.limitBytes = limitBytes
    }

    deinit { free(base) }

    var bytes: Int { rows * width * 4 }

    /// Room for one more row; `commit` keeps it.
    func nextRow() throws -> UnsafeMutablePointer<Float> {
        if rows == capacity {
            let grown = max(1024, capacity + capacity / 2)
            guard grown * width * 4 <= limitBytes, let moved = realloc(base, grown * max(width, 1) * 4) else {
                throw TableError(messages: ["the rows read so far (\(rows) x \(width) float32) and the next would exceed the \(formatByteCount(limitBytes)) of memory this machine has"], total: 1)
            }
            base = moved.assumingMemoryBound(to: Float.self)
            capacity = grown
        }
        return base! + rows * width
    }

    func commit() { rows += 1 }

    /// Appends `other`'s rows (their lines shifted by `lineOffset`), giving `other`'s pages back as
    /// they are copied, so the two together hold little more than the rows once.
    func append(_ other: RawRows, lineOffset: Int) throws {
        let total = rows + other.rows
        if total > capacity {
            guard total * width * 4 <= limitBytes, let moved = realloc(base, max(total, 1) * max(width, 1) * 4) else {
                throw TableError(messages: ["the rows read (\(total) x \(width) float32) would exceed the \(formatByteCount(limitBytes)) of memory this machine has"], total: 1)
            }
            base = moved.assumingMemoryBound(to: Float.self)
            capacity = total
        }
        let chunk = max(1, (16 << 20) / max(1, width * 4))
        var copied = 0
        while copied < other.rows {
            let n = min(chunk, other.rows - copied)
            (base! + (rows + copied) * width).update(from: other.row(copied), count: n * width)
            copied += n
            other.release(rowsBefore: copied)
        }
        rows = total
        if lines != nil, let otherLines = other.lines { lines!.append(contentsOf: otherLines.lazy.map { $0 + lineOffset }) }
    }

    func row(_ index: Int) -> UnsafeMutablePointer<Float> { base! + index * width }

    /// Gives the pages wholly inside rows 0..<end back to the system (they are not read again).
    func release(rowsBefore end: Int) { release(rows: 0..<end) }

    /// Gives the pages wholly inside `rows` back to the system (they are not read again).
    func release(rows: Range<Int>) {
        guard let base else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (Int(bitPattern: base + rows.lowerBound * width) + page - 1) / page * page
        let stop = (Int(bitPattern: base + rows.upperBound * width)) / page * page
        if stop > start { madvise(UnsafeMutableRawPointer(bitPattern: start), stop - start, MADV_DONTNEED) }
    }
}

func formatByteCount(_ bytes: Int) -> String {
    let gib = Double(bytes) / Double(1 << 30)
    if gib >= 1 { return String(format: "%.1f GiB", gib) }
    return String(format: "%.1f MiB", Double(bytes) / Double(1 << 20))
}

/// A category column's values in order of first appearance, with their counts per split.
struct InternedValues {
    var ids: [String: Int32] = [:]
    var names: [String] = []

    mutating func id(of name: String) -> Int32 {
        if let id = ids[name] { return id }
        let id = Int32(names.count)
        ids[name] = id
        names.append(name)
        return id
    }
}

/// The most distinct values a category column may have (its one-hot width).
let maximumCategoryValues = 1 << 16

/// Text a binary column accepts, lowercased: false then true.
let binaryFalse: Set<String> = ["0", "false", "no", "n", "f"]
let binaryTrue: Set<String> = ["1", "true", "yes", "y", "t"]

/// Reads the rows of `path` into `raw`: each cell converted as its column's type says, every bad cell
/// a located problem (collected, capped), rows whose `drop_row` column is empty left out. Stops early
/// when the rows could not fit in memory (estimated from the first rows and the file's size).
///
/// A file of at least `rangeBytes` per thread is read in `threads` byte ranges at once, each after a
/// line break, each into its own rows; they are then joined in file order. A range is kept only when
/// the reading before it ended on a record boundary there (a line break in a quoted field is not one),
/// the range had no problem and its category values fit: otherwise the file is read on in order from
/// its start. Either way the rows, their lines, category ids and problems are those of one reading in
/// order.
func readTableRows(
    path: String, format: CSVFormat, layout: TableLayout, into raw: RawRows, values: inout [InternedValues],
    problems: inout TableProblems, threads: Int = defaultReadingThreads, rangeBytes: Int = 32 << 20
) throws {
    let columns = layout.features + layout.targets
    let reader = try CSVReader(path: path, delimiter: format.delimiter)
    let name = pathForMessage(path)
    let rows = TableRowReader(
        columns: columns, fields: layout.fields, name: name, raw: raw, values: values, problems: problems,
        reader: reader, skipHeader: format.header, missingTexts: format.missingValues)
    defer { rows.release() }
    let starts = reader.lineStarts(dividingInto: min(threads, reader.fileSize / max(rangeBytes, 1)))
    var context: TableRowContext = rows.context
    var ranges: [RangeRows?] = []
    do {
        try withUnsafeMutablePointer(to: &context) { pointer in
            if starts.isEmpty {
                try reader.read(context: UnsafeMutableRawPointer(pointer), field: tableFieldCallback, record: tableRecordCallback)
                return
            }
            let ends = Array(starts.dropFirst()) + [Int.max]
            // A range may hold its share of the memory and some more (a range that needs more is read
            // again in order, where the estimate from the first rows stops a file that cannot fit).
            let rangeLimit = raw.limitBytes / (starts.count + 1) * 5 / 4
            // Read here, not on the other thread: this thread appends to raw.lines meanwhile.
            let keepLines = raw.lines != nil
            let firstRange: Result<Void, Error>
            (ranges, firstRange) = runConcurrently({
                readRanges(zip(starts, ends).map { $0 }, path: path, format: format, layout: layout, limitBytes: rangeLimit, keepLines: keepLines)
            }) {
                Result { try reader.read(context: UnsafeMutableRawPointer(pointer), field: tableFieldCallback, record: tableRecordCallback, until: starts[0]) }
            }
            try firstRange.get()
            for (index, range) in ranges.enumerated() {
                if reader.position != starts[index] || !reader.isAtRecordBoundary || reader.state.pointee.stopped
                    || rows.problems.total > 0 || rows.stopError != nil || pointer.pointee.skipHeader
                {
                    break
                }
                guard let range, rows.join(range, lineOffset: reader.line - 1) else { break }
                reader.position = index + 1 < starts.count ? starts[index + 1] : reader.fileSize
                reader.state.pointee.line += range.lines - 1
                reader.state.pointee.bytesRead += range.bytes
                reader.state.pointee.consumedBytes += range.bytes
                if index + 1 == ranges.count { return }
            }
            if rows.stopError == nil && !reader.state.pointee.stopped {
                try reader.read(context: UnsafeMutableRawPointer(pointer), field: tableFieldCallback, record: tableRecordCallback)
            }
        }
    } catch let failure as CSVReader.Failure {
        rows.problems.add(located(path, failure))
    }
    values = rows.values
    problems = rows.problems
    if let stopError = rows.stopError { throw stopError }
    if !context.skipHeader && rows.records == 0 && problems.total == 0 && format.header {
        problems.add("\(name): the file has a header but no rows")
    }
}

/// Threads that read a large file's ranges at once (this one included).
let defaultReadingThreads = min(8, max(1, ProcessInfo.processInfo.activeProcessorCount))

/// One byte range of a file read on its own: its rows (category ids its own), the lines it spans
/// (1 + its line breaks) and its size. Kept only when it was read without a problem to its end, and
/// the end is a record boundary.
struct RangeRows {
    var raw: RawRows
    var values: [InternedValues]
    var records: Int
    var lines: Int
    var bytes: Int
}

/// Reads `ranges` (start, end: `Int.max` for the last) each on its own thread; nil for a range
/// with a problem.
private func readRanges(
    _ ranges: [(Int, Int)], path: String, format: CSVFormat, layout: TableLayout, limitBytes: Int, keepLines: Bool
) -> [RangeRows?] {
    func readRange(_ start: Int, _ end: Int) -> RangeRows? {
        let columns = layout.features + layout.targets
        guard let reader = try? CSVReader(path: path, delimiter: format.delimiter) else { return nil }
        reader.position = start
        let raw = RawRows(width: columns.count, limitBytes: limitBytes)
        if keepLines { raw.lines = [] }
        let rows = TableRowReader(
            columns: columns, fields: layout.fields, name: "", raw: raw, values: Array(repeating: InternedValues(), count: columns.count),
            problems: TableProblems(), reader: reader, skipHeader: false, missingTexts: format.missingValues, stopsAtFirstProblem: true)
        defer { rows.release() }
        var context = rows.context
        let read: Bool = withUnsafeMutablePointer(to: &context) { pointer in
            (try? reader.read(context: UnsafeMutableRawPointer(pointer), field: tableFieldCallback, record: tableRecordCallback, until: end)) != nil
        }
        guard read, rows.problems.total == 0, rows.stopError == nil, !reader.state.pointee.stopped,
            end == .max || (reader.position == end && reader.isAtRecordBoundary)
        else { return nil }
        return RangeRows(raw: raw, values: rows.values, records: rows.records, lines: reader.line, bytes: reader.bytesRead)
    }
    guard let (first, rest) = ranges.first.map({ ($0, ranges.dropFirst()) }) else { return [] }
    if rest.isEmpty { return [readRange(first.0, first.1)] }
    // Halves: this thread reads the first range and starts one thread for the rest, recursively.
    let (later, this) = runConcurrently({ readRanges(Array(rest), path: path, format: format, layout: layout, limitBytes: limitBytes, keepLines: keepLines) }) {
        readRange(first.0, first.1)
    }
    return [this] + later
}

extension TableRowReader {
    /// Appends a range's rows after those read so far, its category ids renumbered as a reading in
    /// order would have given them. False (nothing changed) when the values would overflow a column.
    func join(_ range: RangeRows, lineOffset: Int) -> Bool {
        var renumber: [(slot: Int, ids: [Float])] = []
        for slot in columns.indices where columns[slot].type == .category {
            let added = range.values[slot].names.lazy.filter { self.values[slot].ids[$0] == nil }.count
            if values[slot].names.count + added > maximumCategoryValues { return false }
            renumber.append((slot, []))
        }
        for index in renumber.indices {
            let slot = renumber[index].slot
            renumber[index].ids = range.values[slot].names.map { Float(values[slot].id(of: $0)) }
        }
        if !renumber.isEmpty {
            for r in 0..<range.raw.rows {
                let row = range.raw.row(r)
                for (slot, ids) in renumber where !row[slot].isNaN { row[slot] = ids[Int(row[slot])] }
            }
        }
        do {
            try raw.append(range.raw, lineOffset: lineOffset)
        } catch let error as TableError {
            stopError = error
            return false
        } catch { return false }
        records += range.records
        return true
    }
}

/// What the field callback reads and writes for each cell, all behind plain pointers: it runs for
/// every cell of the file.
struct TableRowContext {
    var reader: UnsafeMutablePointer<CSVReaderState>
    /// Field position -> slot (feature columns, then targets), -1 for a column not read.
    var slotOfPosition: UnsafeMutablePointer<Int32>
    var positions: Int
    /// Per slot: 0 number, 1 binary, 2 category.
    var kinds: UnsafeMutablePointer<UInt8>
    /// Per slot: 0 an empty cell is an error, 1 drops the row, 2 is filled later.
    var missing: UnsafeMutablePointer<UInt8>
    var scratch: UnsafeMutablePointer<Float>
    /// Whether any cell text besides an empty one counts as missing (`TableRowReader.missingTexts`).
    var hasMissingTexts: Bool
    var skipHeader: Bool
    var bad = false
    var drop = false
    var rows: Unmanaged<TableRowReader>
}

/// The parts of reading rows that are not per number cell: categories, problems, and each finished
/// row stored in `raw`.
final class TableRowReader {
    let columns: [TableLayout.Column]
    let fields: Int
    let name: String
    let raw: RawRows
    var values: [InternedValues]
    var problems: TableProblems
    unowned let reader: CSVReader
    var records = 0
    var estimated = false
    /// A reader of a later range of the file stops at its first problem: the range is then read again
    /// in order, so that every problem is reported as a reading in one pass finds it.
    let stopsAtFirstProblem: Bool
    var stopError: TableError?
    private(set) var context: TableRowContext! = nil
    /// Cell texts read as an empty cell.
    let missingTexts: [[UInt8]]

    init(
        columns: [TableLayout.Column], fields: Int, name: String, raw: RawRows, values: [InternedValues], problems: TableProblems,
        reader: CSVReader, skipHeader: Bool, missingTexts: [String], stopsAtFirstProblem: Bool = false
    ) {
        self.missingTexts = missingTexts.map { Array($0.utf8) }
        self.stopsAtFirstProblem = stopsAtFirstProblem
        estimated = stopsAtFirstProblem
        self.columns = columns
        self.fields = fields
        self.name = name
        self.raw = raw
        self.values = values
        self.problems = problems
        self.reader = reader
        let slotOfPosition = UnsafeMutablePointer<Int32>.allocate(capacity: max(fields, 1))
        slotOfPosition.initialize(repeating: -1, count: max(fields, 1))
        for (slot, column) in columns.enumerated() { slotOfPosition[column.position] = Int32(slot) }
        let kinds = UnsafeMutablePointer<UInt8>.allocate(capacity: max(columns.count, 1))
        let missing = UnsafeMutablePointer<UInt8>.allocate(capacity: max(columns.count, 1))
        for (slot, column) in columns.enumerated() {
            switch column.type {
            case .number: kinds[slot] = 0
            case .binary: kinds[slot] = 1
            case .category: kinds[slot] = 2
            }
            switch column.missing {
            case .error: missing[slot] = 0
            case .dropRow: missing[slot] = 1
            case .mean, .mode, .constant: missing[slot] = 2
            }
        }
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: max(columns.count, 1))
        scratch.initialize(repeating: 0, count: max(columns.count, 1))
        context = TableRowContext(
            reader: reader.state, slotOfPosition: slotOfPosition, positions: fields, kinds: kinds, missing: missing,
            scratch: scratch, hasMissingTexts: !missingTexts.isEmpty, skipHeader: skipHeader, rows: Unmanaged.passUnretained(self))
    }

    func release() {
        context.slotOfPosition.deallocate()
        context.kinds.deallocate()
        context.missing.deallocate()
        context.scratch.deallocate()
    }

    func isMissingText(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> Bool {
        missingTexts.contains { $0.count == count && $0.withUnsafeBufferPointer { memcmp($0.baseAddress!, bytes, count) == 0 } }
    }

    /// A cell that is not a number (or not a finite float32).
    func badNumber(_ bytes: UnsafeBufferPointer<UInt8>, slot: Int, index: Int, line: Int) {
        let why = parseDecimalFloat(bytes.baseAddress!, bytes.count) == nil ? "is not a number" : "is beyond the float32 range"
        problems.add("\(name):\(line):\(index + 1): \(cellText(bytes)) \(why) in column '\(columns[slot].name)'")
    }

    func emptyCell(slot: Int, index: Int, line: Int) {
        problems.add("\(name):\(line):\(index + 1): \(missingTexts.isEmpty ? "empty cell" : "missing value") in column '\(columns[slot].name)' (set its 'missing' strategy to fill it or drop the row)")
    }

    /// A binary or category cell's value, or nil (a problem added).
    func value(_ bytes: UnsafeBufferPointer<UInt8>, slot: Int, index: Int, line: Int) -> Float? {
        let column = columns[slot]
        if column.type == .binary {
            let text = String(decoding: bytes.prefix(8), as: UTF8.self).lowercased()
            if bytes.count <= 5 && binaryFalse.contains(text) { return 0 }
            if bytes.count <= 5 && binaryTrue.contains(text) { return 1 }
            problems.add("\(name):\(line):\(index + 1): \(cellText(bytes)) is not a binary value (0/1, true/false, yes/no) in column '\(column.name)'")
            return nil
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            problems.add("\(name):\(line):\(index + 1): \(cellText(bytes)) is not valid UTF-8 text in column '\(column.name)'")
            return nil
        }
        if values[slot].names.count >= maximumCategoryValues && values[slot].ids[text] == nil {
            problems.add("\(name):\(line):\(index + 1): column '\(column.name)' has more than \(maximumCategoryValues) distinct values; is it a category?")
            return nil
        }
        return Float(values[slot].id(of: text))
    }

    /// Stores a finished row (unless it had a bad cell or is dropped); false stops reading.
    func record(fields count: Int, line: Int, bad: Bool, drop: Bool, scratch: UnsafeMutablePointer<Float>) -> Bool {
        records += 1
        if stopsAtFirstProblem && (bad || problems.total > 0) { return false }
        if count != fields {
            problems.add("\(name):\(line): the row has \(count) field\(count == 1 ? "" : "s") but the header has \(fields)")
            return !problems.isFull && !stopsAtFirstProblem
        }
        if problems.isFull { return false }
        if bad || drop || problems.total > 0 { return true }
        do {
            let row = try raw.nextRow()
            row.update(from: scratch, count: columns.count)
            raw.commit()
            raw.lines?.append(line)
        } catch let error as TableError {
            stopError = error
            return false
        } catch { return false }
        if !estimated && raw.rows == 4096 && reader.consumedBytes < reader.fileSize {
            estimated = true
            // The first rows tell the bytes a row takes: say now, not gigabytes later, when the whole
            // file's rows cannot fit.
            let bytesPerRow = Double(reader.consumedBytes) / Double(raw.rows)
            let rows = Int(Double(reader.fileSize) / max(bytesPerRow, 1))
            let needed = rows * columns.count * 4
            if needed > raw.limitBytes {
                stopError = TableError(
                    messages: ["\(name): about \(rows) rows of \(columns.count) columns need \(formatByteCount(needed)) as float32, more than the \(formatByteCount(raw.limitBytes)) of memory this machine has"],
                    total: 1)
                return false
            }
        }
        return true
    }
}

private func tableFieldCallback(_ pointer: UnsafeMutableRawPointer?, _ length: Int, _ raw: UnsafeMutableRawPointer?) {
    let c = raw!.assumingMemoryBound(to: TableRowContext.self)
    if c.pointee.reader.pointee.stopped { return }
    let index = c.pointee.reader.pointee.beginField()
    if c.pointee.skipHeader || index >= c.pointee.positions { return }
    let slot = Int(c.pointee.slotOfPosition[index])
    if slot < 0 { return }
    guard let pointer, length > 0,
        !c.pointee.hasMissingTexts || !c.pointee.rows._withUnsafeGuaranteedRef({ $0.isMissingText(pointer.assumingMemoryBound(to: UInt8.self), length) })
    else {
        c.pointee.scratch[slot] = .nan
        switch c.pointee.missing[slot] {
        case 0:
            c.pointee.bad = true
            let line = c.pointee.reader.pointee.recordLine
            c.pointee.rows._withUnsafeGuaranteedRef { $0.emptyCell(slot: slot, index: index, line: line) }
        case 1: c.pointee.drop = true
        default: break
        }
        return
    }
    let bytes = pointer.assumingMemoryBound(to: UInt8.self)
    if c.pointee.kinds[slot] == 0, let value = parseDecimalFloat(bytes, length), value.isFinite {
        c.pointee.scratch[slot] = value
        return
    }
    let cell = UnsafeBufferPointer(start: bytes, count: length)
    let line = c.pointee.reader.pointee.recordLine
    if c.pointee.kinds[slot] == 0 {
        c.pointee.bad = true
        c.pointee.rows._withUnsafeGuaranteedRef { $0.badNumber(cell, slot: slot, index: index, line: line) }
        return
    }
    if let value = c.pointee.rows._withUnsafeGuaranteedRef({ $0.value(cell, slot: slot, index: index, line: line) }) {
        c.pointee.scratch[slot] = value
    } else {
        c.pointee.bad = true
    }
}

private func tableRecordCallback(_ terminator: Int32, _ raw: UnsafeMutableRawPointer?) {
    let c = raw!.assumingMemoryBound(to: TableRowContext.self)
    if c.pointee.reader.pointee.stopped { return }
    let fields = c.pointee.reader.pointee.endRecord()
    if c.pointee.skipHeader {
        c.pointee.skipHeader = false
        return
    }
    let line = c.pointee.reader.pointee.recordLine
    let bad = c.pointee.bad, drop = c.pointee.drop, scratch = c.pointee.scratch
    c.pointee.bad = false
    c.pointee.drop = false
    let goOn = c.pointee.rows._withUnsafeGuaranteedRef { $0.record(fields: fields, line: line, bad: bad, drop: drop, scratch: scratch) }
    if !goOn { c.pointee.reader.pointee.stopped = true }
}
