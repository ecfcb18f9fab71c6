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

    func row(_ index: Int) -> UnsafeMutablePointer<Float> { base! + index * width }

    /// Gives the pages wholly inside rows 0..<end back to the system (they are not read again).
    func release(rowsBefore end: Int) {
        guard let base else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (Int(bitPattern: base) + page - 1) / page * page
        let stop = (Int(bitPattern: base + end * width)) / page * page
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
func readTableRows(
    path: String, format: CSVFormat, layout: TableLayout, into raw: RawRows, values valuesIn: inout [InternedValues],
    problems problemsIn: inout TableProblems
) throws {
    // The reader's callbacks escape: they work on these and hand them back at the end.
    var values = valuesIn
    var problems = problemsIn
    defer {
        valuesIn = values
        problemsIn = problems
    }
    let columns = layout.features + layout.targets
    var slotOfPosition = [Int](repeating: -1, count: layout.fields)
    for (slot, column) in columns.enumerated() { slotOfPosition[column.position] = slot }
    let reader = try CSVReader(path: path, delimiter: format.delimiter)
    let name = pathForMessage(path)
    var scratch = [Float](repeating: 0, count: columns.count)
    var drop = false
    var bad = false
    var skipHeader = format.header
    var consumedRows = 0
    var estimated = false
    var stopError: TableError?
    do {
        try reader.read(
            field: { bytes, index, line in
                if skipHeader || index >= slotOfPosition.count { return }
                let slot = slotOfPosition[index]
                if slot < 0 { return }
                let column = columns[slot]
                guard let bytes, !bytes.isEmpty else {
                    scratch[slot] = .nan
                    switch column.missing {
                    case .error:
                        bad = true
                        problems.add("\(name):\(line):\(index + 1): empty cell in column '\(column.name)' (set its 'missing' strategy to fill it or drop the row)")
                    case .dropRow: drop = true
                    case .mean, .mode, .constant: break
                    }
                    return
                }
                switch column.type {
                case .number:
                    if let value = parseDecimalFloat(bytes.baseAddress!, bytes.count), value.isFinite {
                        scratch[slot] = value
                    } else {
                        bad = true
                        let why = parseDecimalFloat(bytes.baseAddress!, bytes.count) == nil ? "is not a number" : "is beyond the float32 range"
                        problems.add("\(name):\(line):\(index + 1): \(cellText(bytes)) \(why) in column '\(column.name)'")
                    }
                case .binary:
                    let text = String(decoding: bytes.prefix(8), as: UTF8.self).lowercased()
                    if bytes.count <= 5 && binaryFalse.contains(text) {
                        scratch[slot] = 0
                    } else if bytes.count <= 5 && binaryTrue.contains(text) {
                        scratch[slot] = 1
                    } else {
                        bad = true
                        problems.add("\(name):\(line):\(index + 1): \(cellText(bytes)) is not a binary value (0/1, true/false, yes/no) in column '\(column.name)'")
                    }
                case .category:
                    guard let text = String(validating: bytes, as: UTF8.self) else {
                        bad = true
                        problems.add("\(name):\(line):\(index + 1): \(cellText(bytes)) is not valid UTF-8 text in column '\(column.name)'")
                        return
                    }
                    if values[slot].names.count >= maximumCategoryValues && values[slot].ids[text] == nil {
                        bad = true
                        problems.add("\(name):\(line):\(index + 1): column '\(column.name)' has more than \(maximumCategoryValues) distinct values; is it a category?")
                        return
                    }
                    scratch[slot] = Float(values[slot].id(of: text))
                }
            },
            record: { fields, line in
                if skipHeader {
                    skipHeader = false
                    return true
                }
                defer {
                    drop = false
                    bad = false
                }
                if fields != layout.fields {
                    problems.add("\(name):\(line): the row has \(fields) field\(fields == 1 ? "" : "s") but the header has \(layout.fields)")
                    return !problems.isFull
                }
                if problems.isFull { return false }
                if bad || drop || problems.total > 0 { return true }
                do {
                    let row = try raw.nextRow()
                    scratch.withUnsafeBufferPointer { row.update(from: $0.baseAddress!, count: columns.count) }
                    raw.commit()
                    raw.lines?.append(line)
                } catch let error as TableError {
                    stopError = error
                    return false
                } catch { return false }
                consumedRows += 1
                if !estimated && consumedRows == 4096 && reader.consumedBytes < reader.fileSize {
                    estimated = true
                    // The first block's rows tell the bytes a row takes: say now, not gigabytes later,
                    // when the whole file's rows cannot fit.
                    let bytesPerRow = Double(reader.consumedBytes) / Double(consumedRows)
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
            })
    } catch let failure as CSVReader.Failure {
        problems.add(located(path, failure))
    }
    if let stopError { throw stopError }
    if skipHeader == false && raw.rows == 0 && problems.total == 0 {
        problems.add("\(name): the file has a header but no rows")
    }
}
