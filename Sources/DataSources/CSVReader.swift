import CCSV
import Files
import Foundation

/// Streams the records of a CSV file through libcsv (RFC 4180: quoted fields, doubled quotes, quoted
/// line breaks), a block at a time: the file's text is never held whole. Each field reaches `onField`
/// with its bytes (nil for an empty unquoted field), its 0-based index in the record and the line
/// the record started on; `onRecord` ends each record. Bytes no CSV can hold (NUL) and records longer
/// than `maximumRecordBytes` stop reading with a located error.
final class CSVReader {
    /// The longest record accepted: a longer one is taken for a file that is not a table (one line of
    /// gigabytes), reported at its line before libcsv grows a buffer for it.
    static let maximumRecordBytes = 16 << 20
    static let blockBytes = 1 << 20

    struct Failure: Error {
        var line: Int
        var column: Int?
        var message: String
    }

    let path: String
    let delimiter: UInt8
    private var parser = csv_parser()
    /// Where the reader stands, behind a pointer: the callbacks run once per field, and state in a
    /// class or a closure's boxes would pay for reference counting and exclusivity checks each time.
    let state = UnsafeMutablePointer<CSVReaderState>.allocate(capacity: 1)
    var line: Int { state.pointee.line }
    var bytesRead: Int { state.pointee.bytesRead }
    var consumedBytes: Int { state.pointee.consumedBytes }
    /// The next byte to read (`read` goes on from here).
    var position = 0
    private var onField: (UnsafeBufferPointer<UInt8>?, Int, Int) -> Void = { _, _, _ in }
    /// Returns false to stop reading after this record.
    private var onRecord: (Int, Int) -> Bool = { _, _ in true }
    private var descriptor: Int32 = -1
    let fileSize: Int

    init(path: String, delimiter: UInt8) throws {
        self.path = path
        self.delimiter = delimiter
        descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else {
            let code = errno
            throw FileAccessError(path: path, reason: code == ENOENT ? "no such file" : "cannot open: \(String(cString: strerror(code)))")
        }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            close(descriptor)
            throw FileAccessError(path: path, reason: "cannot read its status")
        }
        guard status.st_mode & S_IFMT == S_IFREG else {
            close(descriptor)
            throw FileAccessError(path: path, reason: status.st_mode & S_IFMT == S_IFDIR ? "is a directory, not a CSV file" : "is not a regular file, not a CSV file")
        }
        fileSize = Int(status.st_size)
        state.initialize(to: CSVReaderState())
        // Blocking reads from here on (the type check above is what O_NONBLOCK was for).
        _ = fcntl(descriptor, F_SETFL, 0)
        csv_init(&parser, UInt8(CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL | CSV_EMPTY_IS_NULL))
        csv_set_delim(&parser, delimiter)
        // libcsv grows a field's buffer by this many bytes at a time (128 by default): a long field would
        // be reallocated (and, where realloc cannot remap, copied) once per 128 bytes.
        csv_set_blk_size(&parser, 1 << 20)
        posix_fadvise(descriptor, 0, 0, POSIX_FADV_SEQUENTIAL)
    }

    deinit {
        state.deallocate()
        csv_free(&parser)
        if descriptor >= 0 { close(descriptor) }
    }

    /// Reads records until the file ends or `record` returns false (closures: for the header and
    /// other short reads).
    func read(
        field: @escaping (UnsafeBufferPointer<UInt8>?, Int, Int) -> Void, record: @escaping (_ fields: Int, _ line: Int) -> Bool
    ) throws {
        onField = field
        onRecord = record
        try read(context: Unmanaged.passUnretained(self).toOpaque(), field: closureFieldCallback, record: closureRecordCallback)
    }

    /// Reads records from `position` until the file ends, byte `end` is reached, or a record callback
    /// sets `state.stopped`, calling libcsv's callbacks with `context`. They keep `state` up to date with
    /// `CSVReaderState.beginField` and `endRecord`, which give the field's index and the record's line.
    /// Only reaching the end of the file ends the last record (a range's end is a record boundary).
    func read(
        context: UnsafeMutableRawPointer, field: @escaping @convention(c) (UnsafeMutableRawPointer?, Int, UnsafeMutableRawPointer?) -> Void,
        record: @escaping @convention(c) (Int32, UnsafeMutableRawPointer?) -> Void, until end: Int = .max
    ) throws {
        let block = UnsafeMutablePointer<UInt8>.allocate(capacity: CSVReader.blockBytes)
        defer { block.deallocate() }
        var atEnd = false
        while !state.pointee.stopped && position < end {
            let count = pread(descriptor, block, min(CSVReader.blockBytes, end - position), off_t(position))
            if count < 0 {
                if errno == EINTR { continue }
                throw Failure(line: line, column: nil, message: "cannot read: \(String(cString: strerror(errno)))")
            }
            if count == 0 {
                atEnd = true
                break
            }
            var start = 0
            // A UTF-8 byte-order mark is not part of the first column's name.
            if position == 0, count >= 3, block[0] == 0xEF, block[1] == 0xBB, block[2] == 0xBF { start = 3 }
            position += count
            state.pointee.bytesRead += count
            if let nul = memchr(block + start, 0, count - start) {
                let offset = block.distance(to: nul.assumingMemoryBound(to: UInt8.self))
                // Feed what comes before it, so the line number is the NUL's.
                try feed(block + start, offset - start, context, field, record)
                if state.pointee.stopped { break }
                throw Failure(line: line, column: nil, message: "a NUL byte: this is not a text file")
            }
            try feed(block + start, count - start, context, field, record)
        }
        if atEnd && !state.pointee.stopped {
            csv_fini(&parser, field, record, context)
            if csv_error(&parser) == CSV_EPARSE {
                throw Failure(
                    line: state.pointee.recordLine, column: state.pointee.fieldIndex + 1,
                    message: "a quoted field is not closed before the end of the file")
            }
        }
    }

    /// Whether the bytes fed so far end a record (libcsv's state 0: no row begun, so no quoted field
    /// open): parsing may go on from here with a fresh parser.
    var isAtRecordBoundary: Bool { parser.pstate == 0 }

    /// Up to `count - 1` offsets that split the file into about equal ranges, each just after a line
    /// break found within a block after the cut; fewer when lines are long or the file is small. A
    /// line break inside a quoted field is not a record boundary: the reader of the range before a
    /// split checks `isAtRecordBoundary` when it gets there.
    func lineStarts(dividingInto count: Int) -> [Int] {
        guard count > 1 else { return [] }
        let block = UnsafeMutablePointer<UInt8>.allocate(capacity: CSVReader.blockBytes)
        defer { block.deallocate() }
        var starts: [Int] = []
        for k in 1..<count {
            let cut = fileSize / count * k
            if let last = starts.last, cut < last { continue }
            let got = pread(descriptor, block, CSVReader.blockBytes, off_t(cut))
            guard got > 0, let newline = memchr(block, 0x0A, got) else { continue }
            let start = cut + block.distance(to: newline.assumingMemoryBound(to: UInt8.self)) + 1
            if start < fileSize && start > (starts.last ?? 0) { starts.append(start) }
        }
        return starts
    }

    /// Feeds bytes to libcsv a line at a time, so that the callbacks know the line.
    private func feed(
        _ bytes: UnsafeMutablePointer<UInt8>, _ count: Int, _ context: UnsafeMutableRawPointer,
        _ field: @convention(c) (UnsafeMutableRawPointer?, Int, UnsafeMutableRawPointer?) -> Void,
        _ record: @convention(c) (Int32, UnsafeMutableRawPointer?) -> Void
    ) throws {
        var offset = 0
        while offset < count && !state.pointee.stopped {
            let rest = count - offset
            let newline = memchr(bytes + offset, 0x0A, rest)
            let length = newline.map { bytes.distance(to: $0.assumingMemoryBound(to: UInt8.self)) - offset + 1 } ?? rest
            state.pointee.recordBytes += length
            state.pointee.consumedBytes += length
            // libcsv's state 0: no row begun, so a row starting in this line starts on it (blank lines
            // have none; a quoted line break continues the row begun before).
            if parser.pstate == 0 { state.pointee.recordLine = state.pointee.line }
            if state.pointee.recordBytes > CSVReader.maximumRecordBytes {
                throw Failure(
                    line: state.pointee.recordLine, column: nil,
                    message: "a row longer than \(CSVReader.maximumRecordBytes >> 20) MiB: this is not a table of rows (or a quoted field is not closed)")
            }
            let parsed = csv_parse(&parser, bytes + offset, length, field, record, context)
            if parsed != length && !state.pointee.stopped {
                throw Failure(
                    line: state.pointee.line, column: state.pointee.fieldIndex + 1,
                    message: "malformed quoting (RFC 4180: a quote inside a quoted field is written twice, \"\")")
            }
            offset += length
            if newline != nil { state.pointee.line += 1 }
        }
    }

    fileprivate func closureField(_ pointer: UnsafeMutableRawPointer?, _ length: Int) {
        if state.pointee.stopped { return }
        let index = state.pointee.beginField()
        let bytes = pointer.map { UnsafeBufferPointer(start: $0.assumingMemoryBound(to: UInt8.self), count: length) }
        onField(bytes, index, state.pointee.recordLine)
    }

    fileprivate func closureRecord() {
        if state.pointee.stopped { return }
        let fields = state.pointee.endRecord()
        if !onRecord(fields, state.pointee.recordLine) { state.pointee.stopped = true }
    }
}

/// Where a `CSVReader` stands: the line being fed, the line the current record began on, the
/// current record's field count and size.
struct CSVReaderState {
    var line = 1
    var recordLine = 1
    var fieldIndex = 0
    var recordBytes = 0
    var bytesRead = 0
    /// Bytes handed to libcsv so far (to the end of the line being parsed).
    var consumedBytes = 0
    /// Set by a record callback to stop reading.
    var stopped = false

    /// The index of the field that starts (its callback calls this first).
    @inline(__always) mutating func beginField() -> Int {
        let index = fieldIndex
        fieldIndex += 1
        return index
    }

    /// The number of fields of the record that ends.
    @inline(__always) mutating func endRecord() -> Int {
        let fields = fieldIndex
        fieldIndex = 0
        recordBytes = 0
        return fields
    }
}

private func closureFieldCallback(_ pointer: UnsafeMutableRawPointer?, _ length: Int, _ context: UnsafeMutableRawPointer?) {
    Unmanaged<CSVReader>.fromOpaque(context!).takeUnretainedValue().closureField(pointer, length)
}

private func closureRecordCallback(_ terminator: Int32, _ context: UnsafeMutableRawPointer?) {
    Unmanaged<CSVReader>.fromOpaque(context!).takeUnretainedValue().closureRecord()
}
