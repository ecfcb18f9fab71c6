// The IDX format (http://yann.lecun.com/exdb/mnist/): a big-endian magic 0x00 0x00 TYPE RANK, RANK
// big-endian uint32 dimensions, then the elements in row-major order. mlpc reads uint8 data only
// (TYPE 0x08), from plain files or gzip-compressed ones (name ending ".gz").
//
// The reader treats the file as hostile: the header is checked before any data is read, the data
// size implied by the dimensions is checked against the real file length (for gzip files: against
// what a gzip file of that size can hold, and against a fixed limit) before anything of that size
// is allocated, and data that is short or followed by trailing bytes is an error, not a guess.

import Planner
import Files
import CDeflateLoader

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#elseif canImport(Musl)
import Musl
#endif

/// A problem reading an IDX file: names the file, where in it the problem is, and what it is.
public struct IDXError: Error, CustomStringConvertible, Equatable, Sendable {
    /// Where a problem is. Offsets in gzip files are given either in the decompressed bytes (for
    /// problems with the IDX content) or in the compressed bytes (for a damaged gzip stream).
    public enum Position: Equatable, Sendable {
        case none
        case file(Int)
        case decompressed(Int)
        case compressed(Int)
    }

    public enum Kind: Equatable, Sendable {
        case unreadable
        case truncatedHeader
        case wrongMagic
        case unsupportedElementType
        case zeroDimension
        case tooLarge
        case truncatedData
        case trailingBytes
        case corruptCompression
        case truncatedCompression
    }

    public var path: String
    public var kind: Kind
    public var position: Position
    public var reason: String

    public init(path: String, kind: Kind, position: Position, reason: String) {
        self.path = path
        self.kind = kind
        self.position = position
        self.reason = reason
    }

    /// The byte offset of the problem, whichever bytes it counts.
    public var offset: Int? {
        switch position {
        case .none: return nil
        case .file(let offset), .decompressed(let offset), .compressed(let offset): return offset
        }
    }

    public var description: String {
        switch position {
        case .none: return "\(pathForMessage(path)): \(reason)"
        case .file(let offset): return "\(pathForMessage(path)): byte \(offset): \(reason)"
        case .decompressed(let offset): return "\(pathForMessage(path)): byte \(offset) of the decompressed data: \(reason)"
        case .compressed(let offset): return "\(pathForMessage(path)): compressed byte \(offset): \(reason)"
        }
    }
}

/// The header of an IDX file, read without reading its data.
public struct IDXHeader: Equatable, Sendable {
    /// Element type codes of the IDX format; only `uint8` can be read.
    public static let uint8TypeCode: UInt8 = 0x08
    static let typeNames: [UInt8: String] = [
        0x08: "uint8", 0x09: "int8", 0x0B: "int16", 0x0C: "int32", 0x0D: "float32", 0x0E: "float64",
    ]

    public var path: String
    /// Dimensions, outermost first (for images: count, rows, columns).
    public var dimensions: [Int]
    /// True when the file is gzip-compressed.
    public var isCompressed: Bool
    /// The size of the file as stored (compressed size for gzip files).
    public var storedSize: Int

    public var headerLength: Int { 4 + 4 * dimensions.count }
    /// The number of data bytes the dimensions call for (their product; `Int.max` if that overflows,
    /// which a header read from a file never does: the reader refuses such dimensions).
    public var dataLength: Int {
        var product = 1
        for size in dimensions {
            let (next, overflow) = product.multipliedReportingOverflow(by: size)
            if overflow { return Int.max }
            product = next
        }
        return product
    }

    public init(path: String, dimensions: [Int], isCompressed: Bool, storedSize: Int) {
        self.path = path
        self.dimensions = dimensions
        self.isCompressed = isCompressed
        self.storedSize = storedSize
    }

    /// Reads and checks the header of the file at `path` (gzip-compressed when the name ends in
    /// ".gz"; only its first bytes are inflated). For an uncompressed file the file length is
    /// checked against the dimensions too, since that needs no reading; a gzip file's length is
    /// known only after inflating it all, which `IDXFile.read` does.
    ///
    /// The sizes are checked by the same rule `IDXFile.read` applies before loading
    /// (`checkLoadableSize`), so a header that passes here (`mlpc check`) is not refused by `mlpc run`.
    public static func read(path: String, maximumDataLength: Int = IDXFile.maximumDataLength) throws -> IDXHeader {
        let reader = try DecompressingReader(path: path, compressed: path.hasSuffix(".gz"))
        let header = try read(from: reader)
        try header.checkLoadableSize(maximumDataLength: maximumDataLength, place: reader.place)
        return header
    }

    /// The one size rule for loading: the data is at most `maximumDataLength` bytes, and fits the file
    /// (exactly, for a plain file; within what deflate can expand it to, for a gzip file).
    func checkLoadableSize(maximumDataLength: Int, place: (Int) -> IDXError.Position) throws {
        let dimensionText = IDXHeader.dimensionText(dimensions)
        guard dataLength <= maximumDataLength else {
            throw IDXError(path: path, kind: .tooLarge, position: place(4),
                           reason: "dimensions \(dimensionText) call for \(dataLength) data bytes, more than the limit of \(maximumDataLength)")
        }
        if isCompressed {
            let (capacity, overflow) = storedSize.multipliedReportingOverflow(by: DecompressingReader.maximumDeflateExpansion)
            guard overflow || dataLength <= capacity else {
                throw IDXError(path: path, kind: .truncatedData, position: place(headerLength),
                               reason: "dimensions \(dimensionText) call for \(dataLength) data bytes, but a gzip file of "
                                   + "\(storedSize) bytes holds at most \(capacity)")
            }
        } else {
            try checkPlainFileLength()
        }
    }

    /// Reads and checks the magic number and the dimensions from the start of `reader`.
    static func read(from reader: DecompressingReader) throws -> IDXHeader {
        let path = reader.path
        var magic = [UInt8](repeating: 0, count: 4)
        let magicCount = try magic.withUnsafeMutableBytes { try reader.read(into: $0.baseAddress!, count: 4) }
        guard magicCount == 4 else {
            throw IDXError(path: path, kind: .truncatedHeader, position: reader.place(magicCount),
                           reason: "truncated header: the file ends after \(magicCount) bytes, before the 4-byte magic number")
        }
        let magicText = "0x" + magic.map { String($0, radix: 16).leftPadded(to: 2) }.joined()
        guard magic[0] == 0, magic[1] == 0 else {
            let hint = magic[0] == 0x1F && magic[1] == 0x8B ? " (the file is gzip-compressed; its name should end in .gz)" : ""
            throw IDXError(path: path, kind: .wrongMagic, position: reader.place(0),
                           reason: "wrong magic number \(magicText): an IDX file starts with 0x0000 followed by a type and a rank byte\(hint)")
        }
        guard magic[2] == uint8TypeCode else {
            if let name = typeNames[magic[2]] {
                throw IDXError(path: path, kind: .unsupportedElementType, position: reader.place(2),
                               reason: "element type \(name) (0x\(String(magic[2], radix: 16).leftPadded(to: 2))) is not supported; mlpc reads uint8 (0x08) IDX files only")
            }
            throw IDXError(path: path, kind: .wrongMagic, position: reader.place(2),
                           reason: "wrong magic number \(magicText): unknown element type 0x\(String(magic[2], radix: 16).leftPadded(to: 2))")
        }
        let rank = Int(magic[3])
        guard rank > 0 else {
            throw IDXError(path: path, kind: .zeroDimension, position: reader.place(3),
                           reason: "the header declares no dimensions (rank 0)")
        }
        var dimensionBytes = [UInt8](repeating: 0, count: 4 * rank)
        let dimensionCount = try dimensionBytes.withUnsafeMutableBytes { try reader.read(into: $0.baseAddress!, count: 4 * rank) }
        guard dimensionCount == 4 * rank else {
            throw IDXError(path: path, kind: .truncatedHeader, position: reader.place(4 + dimensionCount),
                           reason: "truncated header: \(rank) dimensions need \(4 + 4 * rank) header bytes but the file ends after \(4 + dimensionCount)")
        }
        var dimensions = [Int]()
        var product = 1
        for index in 0..<rank {
            let b = dimensionBytes[(4 * index)..<(4 * index + 4)].map { Int($0) }
            let size = b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3]
            guard size > 0 else {
                throw IDXError(path: path, kind: .zeroDimension, position: reader.place(4 + 4 * index),
                               reason: "dimension \(index) is zero")
            }
            let (next, overflow) = product.multipliedReportingOverflow(by: size)
            guard !overflow else {
                throw IDXError(path: path, kind: .tooLarge, position: reader.place(4 + 4 * index),
                               reason: "dimensions \(dimensionText(dimensions + [size])) multiply to more elements than can be addressed")
            }
            product = next
            dimensions.append(size)
        }
        return IDXHeader(path: path, dimensions: dimensions, isCompressed: reader.isCompressed, storedSize: reader.storedSize)
    }

    /// For an uncompressed file: the file must be exactly header plus data long.
    func checkPlainFileLength() throws {
        let expected = headerLength + dataLength
        if storedSize < expected {
            throw IDXError(
                path: path, kind: .truncatedData, position: .file(storedSize),
                reason: "truncated data: dimensions \(IDXHeader.dimensionText(dimensions)) need \(dataLength) data bytes after the "
                    + "\(headerLength)-byte header (\(expected) bytes in all), but the file is \(storedSize) bytes long")
        }
        if storedSize > expected {
            throw IDXError(
                path: path, kind: .trailingBytes, position: .file(expected),
                reason: "\(storedSize - expected) trailing bytes after the data: dimensions \(IDXHeader.dimensionText(dimensions)) "
                    + "call for \(expected) bytes in all, but the file is \(storedSize) bytes long")
        }
    }

    static func dimensionText(_ dimensions: [Int]) -> String {
        dimensions.map(String.init).joined(separator: "x")
    }
}

/// What decoded an IDX file.
enum IDXDecoder: Equatable, Sendable {
    /// Not compressed.
    case none
    /// zlib, streaming: always available, and the decoder that reports damaged files.
    case zlib
    /// libdeflate, the whole file at once (`IDXFile.inflatedByLibdeflate`).
    case libdeflate
}

/// The uint8 contents of an IDX file, with the SHA-256 of its (decompressed) bytes.
public struct IDXFile: Sendable {
    /// The largest decompressed data accepted: far above any dataset mlpc trains on, and a bound on
    /// what a hostile gzip file can make the reader allocate.
    public static let maximumDataLength = 2 << 30

    public var header: IDXHeader
    /// The elements in row-major order; `dimensions.reduce(1, *)` bytes.
    public var data: [UInt8]
    /// The SHA-256 of the whole decompressed file (header and data), as published checksums are.
    public var sha256: SHA256Digest

    /// What decoded the file.
    var decoder: IDXDecoder = .none

    public var path: String { header.path }
    public var dimensions: [Int] { header.dimensions }

    /// Reads, checks and hashes the IDX file at `path`; gzip-compressed when the name ends in ".gz".
    public static func read(path: String, maximumDataLength: Int = IDXFile.maximumDataLength) throws -> IDXFile {
        try read(path: path, maximumDataLength: maximumDataLength, hashedBy: nil)
    }

    /// The same, with the hashing done by `pipeline` (on another thread that calls its
    /// `hashUntilClosed`) when one is given. The pipeline is closed whatever happens. A large gzip
    /// file is inflated whole by libdeflate when the system has it, unless `wholeFileInflation` is
    /// false (tests compare the two decoders).
    static func read(
        path: String, maximumDataLength: Int = IDXFile.maximumDataLength, hashedBy pipeline: PipelinedSHA256?,
        wholeFileInflation: Bool = true
    ) throws -> IDXFile {
        defer { pipeline?.close() }
        let reader = try DecompressingReader(path: path, compressed: path.hasSuffix(".gz"))
        let header = try IDXHeader.read(from: reader)
        let dataLength = header.dataLength
        let dimensionText = IDXHeader.dimensionText(header.dimensions)
        try header.checkLoadableSize(maximumDataLength: maximumDataLength, place: reader.place)

        if wholeFileInflation, reader.isCompressed, dataLength >= wholeFileInflationMinimum,
           let data = inflatedByLibdeflate(reader, header: header)
        {
            let prefix = headerBytes(header.dimensions)
            let digest = data.withUnsafeBytes { bytes -> SHA256Digest in
                if let pipeline {
                    pipeline.begin(prefix: prefix, data: bytes.baseAddress!)
                    pipeline.publish(dataLength)
                    pipeline.close()
                    return pipeline.waitForDigest()
                }
                var hasher = SHA256()
                hasher.update(prefix)
                hasher.update(bytes)
                return hasher.finalize()
            }
            return IDXFile(header: header, data: data, sha256: digest, decoder: .libdeflate)
        }

        // The data goes straight from zlib into its final array and is hashed piece by piece on the
        // way (here, or on the pipeline's thread), so the file is decoded once, with no copy.
        var hasher = SHA256()
        var pipelinedDigest: SHA256Digest? = nil
        if pipeline == nil { hasher.update(headerBytes(header.dimensions)) }
        var got = 0
        let data = try [UInt8](unsafeUninitializedCapacity: dataLength) { buffer, initialized in
            let base = UnsafeMutableRawPointer(buffer.baseAddress!)
            adviseHugePages(base, bytes: dataLength)
            if let pipeline {
                pipeline.begin(prefix: headerBytes(header.dimensions), data: base)
                defer {
                    // The hashing thread reads this buffer, which an error here frees: wait for it
                    // before leaving, whatever happened.
                    pipeline.close()
                    pipelinedDigest = pipeline.waitForDigest()
                }
                got = try reader.read(into: base, count: dataLength) { start, count in pipeline.publish(start + count) }
            } else {
                got = try reader.read(into: base, count: dataLength, hashingInto: &hasher)
            }
            if got < dataLength {
                // Zero the rest so the buffer is fully initialized before it is thrown away.
                (buffer.baseAddress! + got).initialize(repeating: 0, count: dataLength - got)
            }
            initialized = dataLength
        }
        guard got == dataLength else {
            throw IDXError(
                path: path, kind: .truncatedData, position: reader.place(header.headerLength + got),
                reason: "truncated data: dimensions \(dimensionText) need \(dataLength) data bytes after the "
                    + "\(header.headerLength)-byte header, but the data ends after \(got)")
        }
        let trailing = try reader.skipRemaining(limit: maximumDataLength)
        guard trailing == 0 else {
            let count = trailing > maximumDataLength ? "more than \(maximumDataLength)" : "\(trailing)"
            throw IDXError(
                path: path, kind: .trailingBytes, position: reader.place(header.headerLength + dataLength),
                reason: "\(count) trailing bytes after the data: dimensions \(dimensionText) call for "
                    + "\(header.headerLength + dataLength) bytes in all")
        }

        return IDXFile(header: header, data: data, sha256: pipelinedDigest ?? hasher.finalize(), decoder: reader.isCompressed ? .zlib : .none)
    }

    /// Smaller gzip files go through zlib alone: reading them whole would gain nothing worth a second
    /// code path's work (a few milliseconds at most).
    static let wholeFileInflationMinimum = 1 << 20

    /// The data of the gzip file `reader` reads, inflated whole by libdeflate (about 3.5 times zlib's
    /// speed), or nil when there is no libdeflate or the file is anything but one gzip member holding
    /// exactly `header` and its data: a damaged or cut-off stream, more members, trailing bytes, a file
    /// that changed since it was opened. The streaming zlib reader then reads it, and reports what is
    /// wrong with the place. The inflated header is checked against `header`, which `reader` read.
    static func inflatedByLibdeflate(_ reader: DecompressingReader, header: IDXHeader) -> [UInt8]? {
        let headerLength = header.headerLength, dataLength = header.dataLength
        // Deflate never stores data in much more than its own size (stored blocks add 5 bytes in
        // 65,535); a larger file has something else in it, which the streaming reader reports
        // without reading it whole.
        let largestGzipSize = (headerLength + dataLength) + (headerLength + dataLength) / 1000 + 4096
        guard mlpc_libdeflate_available() != 0, reader.storedSize <= largestGzipSize, let compressed = reader.storedBytes() else {
            return nil
        }
        defer { compressed.deallocate() }
        let prefix = headerBytes(header.dimensions)
        var inflated = false
        let data = [UInt8](unsafeUninitializedCapacity: headerLength + dataLength) { buffer, initialized in
            let base = UnsafeMutableRawPointer(buffer.baseAddress!)
            adviseHugePages(base, bytes: headerLength + dataLength)
            var used = 0, written = 0
            let status = mlpc_gzip_inflate_whole(
                compressed.baseAddress, compressed.count, base, headerLength + dataLength, &used, &written)
            guard status == MLPC_INFLATE_DONE, used == compressed.count, written == headerLength + dataLength,
                  memcmp(base, prefix, headerLength) == 0
            else {
                initialized = 0
                return
            }
            // The array holds the data alone: move it over the header (a few milliseconds, and no
            // second buffer of the file's size).
            memmove(base, base + headerLength, dataLength)
            initialized = dataLength
            inflated = true
        }
        return inflated ? data : nil
    }

    /// The header bytes of a uint8 IDX file with these dimensions.
    static func headerBytes(_ dimensions: [Int]) -> [UInt8] {
        var bytes: [UInt8] = [0, 0, IDXHeader.uint8TypeCode, UInt8(truncatingIfNeeded: dimensions.count)]
        for size in dimensions {
            let value = UInt32(truncatingIfNeeded: size)
            bytes += [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
        }
        return bytes
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}

