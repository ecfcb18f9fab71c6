import Planner
import Files
import CZlib
import Foundation

#if canImport(Glibc)
import Glibc
#endif

// Reads the bytes of a file, inflating it on the way when it is gzip-compressed, so that the IDX
// reader can take a header first and decide how much to read next, and so that a header probe
// inflates only the first few bytes. Compressed input is read in 64 KiB pieces; every gzip member
// is inflated in turn (zlib checks each member's CRC-32 and length), and a damaged or cut-off
// stream is reported with the compressed byte offset where zlib stopped.

final class DecompressingReader {
    /// The largest deflate expansion: one compressed byte can stand for at most 1032 output bytes
    /// (zlib's technical notes). Used to refuse headers that claim more data than a gzip file of
    /// its size can possibly hold, before anything of that size is allocated.
    static let maximumDeflateExpansion = 1032

    private enum Input {
        case file(Int32)
        case memory([UInt8], position: Int)
    }

    let path: String
    let isCompressed: Bool
    /// The size of the stored (possibly compressed) input in bytes.
    let storedSize: Int
    /// Decompressed bytes handed out so far.
    private(set) var position = 0

    private var input: Input
    private var stream = z_stream()
    private var streamInitialized = false
    private var inputBuffer: UnsafeMutablePointer<UInt8>?
    private static let inputBufferSize = 64 * 1024
    /// Compressed bytes consumed by zlib so far: the offset reported when the stream is damaged.
    private var compressedConsumed = 0
    /// True between the start of a gzip member and its end; input ending here means truncation.
    private var insideMember = true
    private var finished = false

    /// Opens `path`; the file is inflated when `compressed` is true.
    init(path: String, compressed: Bool) throws {
        self.path = path
        self.isCompressed = compressed
        // Non-blocking, so that a FIFO fails the type check below instead of waiting for a writer; reads
        // of a regular file do not heed the flag.
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            var link = stat()
            if code == ENOENT && lstat(path, &link) == 0 && (link.st_mode & S_IFMT) == S_IFLNK {
                throw IDXError(path: path, kind: .unreadable, position: .none, reason: "a symbolic link to a file that does not exist")
            }
            // Opening a socket fails with ENXIO ("No such device or address").
            if code == ENXIO && stat(path, &link) == 0 && (link.st_mode & S_IFMT) == S_IFSOCK {
                throw IDXError(path: path, kind: .unreadable, position: .none, reason: "not a regular file")
            }
            throw IDXError(path: path, kind: .unreadable, position: .none, reason: "cannot open: \(String(cString: strerror(code)))")
        }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw IDXError(path: path, kind: .unreadable, position: .none, reason: "cannot stat: \(reason)")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            let kind = (info.st_mode & S_IFMT) == S_IFDIR ? "a directory" : "not a regular file"
            throw IDXError(path: path, kind: .unreadable, position: .none, reason: kind)
        }
        self.storedSize = Int(info.st_size)
        self.input = .file(fd)
        if compressed { try startInflating() }
    }

    /// Inflates gzip (or zlib) data held in memory; `name` is what errors call it (a URL, say).
    init(compressedBytes: [UInt8], name: String) throws {
        self.path = name
        self.isCompressed = true
        self.storedSize = compressedBytes.count
        self.input = .memory(compressedBytes, position: 0)
        try startInflating()
    }

    deinit {
        if streamInitialized { inflateEnd(&stream) }
        inputBuffer?.deallocate()
        if case .file(let fd) = input { close(fd) }
    }

    /// How the current position is described in errors: decompressed or plain file offsets.
    func place(_ offset: Int) -> IDXError.Position {
        isCompressed ? .decompressed(offset) : .file(offset)
    }

    private func startInflating() throws {
        inputBuffer = UnsafeMutablePointer<UInt8>.allocate(capacity: Self.inputBufferSize)
        // 15 + 32: a 32 KiB window, and accept either a gzip or a zlib wrapper.
        let status = inflateInit2_(&stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else {
            throw IDXError(path: path, kind: .unreadable, position: .none, reason: "zlib inflateInit2 failed with status \(status)")
        }
        streamInitialized = true
    }

    /// Reads up to `count` decompressed bytes into `destination`; fewer only at the end of the data.
    func read(into destination: UnsafeMutableRawPointer, count: Int) throws -> Int {
        let got = isCompressed ? try inflate(into: destination, count: count) : try readPlain(into: destination, count: count)
        position += got
        return got
    }

    /// The whole stored file, as it is on disk (compressed bytes for a gzip file), in a new buffer the
    /// caller deallocates. Read with pread, so the stream's own position does not move. Nil for input
    /// held in memory, on a read error, or when the file no longer has the size it had when opened.
    func storedBytes() -> UnsafeMutableRawBufferPointer? {
        guard case .file(let fd) = input else { return nil }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: storedSize + 1, alignment: 64)
        // One byte more than the size is asked for: getting it means the file grew.
        var got = 0
        while got <= storedSize {
            let n = pread(fd, buffer.baseAddress! + got, storedSize + 1 - got, off_t(got))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            got += n
        }
        guard got == storedSize else {
            buffer.deallocate()
            return nil
        }
        return UnsafeMutableRawBufferPointer(rebasing: buffer[0..<storedSize])
    }

    /// Reads and discards the rest of the data, up to `limit` bytes, and returns how many there were
    /// (at most `limit + 1`, which means "more than limit"). For compressed input this also runs
    /// zlib's end-of-member checks.
    func skipRemaining(limit: Int) throws -> Int {
        if !isCompressed {
            let remaining = max(0, storedSize - position)
            position += min(remaining, limit + 1)
            return min(remaining, limit + 1)
        }
        let scratchSize = 64 * 1024
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: scratchSize, alignment: 16)
        defer { scratch.deallocate() }
        var skipped = 0
        while skipped <= limit {
            let got = try read(into: scratch, count: min(scratchSize, limit + 1 - skipped))
            if got == 0 { break }
            skipped += got
        }
        return skipped
    }

    /// Reads up to `count` bytes into `destination` like `read(into:count:)`, and feeds them to
    /// `hasher` piece by piece while each piece is still in the cache: one pass over the bytes.
    func read(into destination: UnsafeMutableRawPointer, count: Int, hashingInto hasher: inout SHA256) throws -> Int {
        try read(into: destination, count: count) { start, n in
            hasher.update(UnsafeRawBufferPointer(start: destination + start, count: n))
        }
    }

    /// Reads like `read(into:count:)` in pieces of `hashPieceSize`, calling `piece(start, count)` after
    /// each one with its place in `destination`.
    func read(into destination: UnsafeMutableRawPointer, count: Int, eachPiece piece: (Int, Int) -> Void) throws -> Int {
        var got = 0
        while got < count {
            let want = min(Self.hashPieceSize, count - got)
            let n = try read(into: destination + got, count: want)
            piece(got, n)
            got += n
            if n < want { break }
        }
        return got
    }

    /// Small enough to stay in the L2 cache between inflating and hashing it.
    private static let hashPieceSize = 256 * 1024

    /// Hashes everything that is left without keeping it, refusing more than `limit` bytes; returns
    /// the digest and the number of bytes.
    func digestRemaining(limit: Int) throws -> (digest: SHA256Digest, count: Int) {
        var hasher = SHA256()
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: Self.hashPieceSize, alignment: 16)
        defer { scratch.deallocate() }
        var total = 0
        while true {
            let want = min(Self.hashPieceSize, limit + 1 - total)
            let got = try read(into: scratch, count: want, hashingInto: &hasher)
            total += got
            if total > limit {
                throw IDXError(path: path, kind: .tooLarge, position: place(limit),
                               reason: "decompressed data exceeds the limit of \(limit) bytes")
            }
            if got < want { return (hasher.finalize(), total) }
        }
    }

    private func readPlain(into destination: UnsafeMutableRawPointer, count: Int) throws -> Int {
        guard case .file(let fd) = input else { return 0 }
        var got = 0
        while got < count {
            let n = Glibc.read(fd, destination + got, count - got)
            if n < 0 {
                if errno == EINTR { continue }
                throw IDXError(path: path, kind: .unreadable, position: .file(position + got),
                               reason: "read failed: \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            got += n
        }
        return got
    }

    /// Refills zlib's input; returns the number of compressed bytes now available (0 at the end).
    private func refill() throws -> Int {
        guard let buffer = inputBuffer else { return 0 }
        var got = 0
        switch input {
        case .file(let fd):
            while true {
                let n = Glibc.read(fd, buffer, Self.inputBufferSize)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw IDXError(path: path, kind: .unreadable, position: .compressed(compressedConsumed),
                                   reason: "read failed: \(String(cString: strerror(errno)))")
                }
                got = n
                break
            }
        case .memory(let bytes, let offset):
            got = min(Self.inputBufferSize, bytes.count - offset)
            if got > 0 {
                bytes.withUnsafeBufferPointer { buffer.update(from: $0.baseAddress! + offset, count: got) }
            }
            input = .memory(bytes, position: offset + got)
        }
        stream.next_in = buffer
        stream.avail_in = UInt32(got)
        return got
    }

    private func inflate(into destination: UnsafeMutableRawPointer, count: Int) throws -> Int {
        var produced = 0
        while produced < count && !finished {
            if stream.avail_in == 0, try refill() == 0 {
                if insideMember {
                    throw IDXError(
                        path: path, kind: .truncatedCompression, position: .compressed(storedSize),
                        reason: "the gzip stream is truncated: the compressed data ends at byte \(storedSize) "
                            + "in the middle of the stream, after \(position + produced) decompressed bytes")
                }
                finished = true
                break
            }
            if !insideMember {
                // More input after a complete member: gzip allows members to be concatenated.
                guard inflateReset(&stream) == Z_OK else {
                    throw IDXError(path: path, kind: .unreadable, position: .compressed(compressedConsumed), reason: "zlib inflateReset failed")
                }
                insideMember = true
            }
            let room = min(count - produced, Int(UInt32.max))
            stream.next_out = (destination + produced).assumingMemoryBound(to: UInt8.self)
            stream.avail_out = UInt32(room)
            let availableBefore = Int(stream.avail_in)
            let status = CZlib.inflate(&stream, Z_NO_FLUSH)
            compressedConsumed += availableBefore - Int(stream.avail_in)
            produced += room - Int(stream.avail_out)
            switch status {
            case Z_OK, Z_BUF_ERROR:
                continue
            case Z_STREAM_END:
                insideMember = false
            case Z_NEED_DICT, Z_DATA_ERROR:
                let message = stream.msg.map { String(cString: $0) } ?? "invalid compressed data"
                throw IDXError(
                    path: path, kind: .corruptCompression, position: .compressed(compressedConsumed),
                    reason: "corrupt gzip stream (zlib: \(message)), after \(position + produced) decompressed bytes")
            case Z_MEM_ERROR:
                throw IDXError(path: path, kind: .unreadable, position: .compressed(compressedConsumed), reason: "zlib is out of memory")
            default:
                throw IDXError(path: path, kind: .corruptCompression, position: .compressed(compressedConsumed),
                               reason: "zlib inflate failed with status \(status)")
            }
        }
        return produced
    }
}
