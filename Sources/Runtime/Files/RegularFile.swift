import Foundation

// Model files and pictures are paths the user names on the command line. A path that does not lead
// to readable bytes (missing, a directory, a device, a FIFO, no permission) is a different failure
// from a file whose content is bad: the command line reports the first as an unusable argument
// (exit status 2) and the second as invalid input (1), so the reader keeps them apart.

/// A path that cannot be read as a file: it does not exist, is a directory, is not a regular file
/// (a device such as /dev/zero, a FIFO, a socket), or cannot be opened or read. Names the path.
public struct FileAccessError: Error, CustomStringConvertible, Equatable {
    public var path: String
    public var reason: String

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    public var description: String { "\(path): \(reason)" }
}

/// The bytes of the regular file at `path`; `what` names what the file should be ("a model file")
/// in the message for a directory. The file is opened non-blocking and its type checked before
/// anything is read, so a FIFO or a device never blocks the reader or floods it with bytes.
/// Throws `FileAccessError` when the path cannot be read; a file over `limit` bytes is one too.
public func readRegularFile(path: String, what: String, limit: Int = Int.max) throws -> [UInt8] {
    func failure(_ reason: String) -> FileAccessError { FileAccessError(path: path, reason: reason) }
    let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
    guard descriptor >= 0 else {
        let code = errno
        switch code {
        case ENOENT: throw failure("no such file")
        case ENOTDIR: throw failure("no such file (a part of the path is not a directory)")
        default: throw failure("cannot open: \(String(cString: strerror(code)))")
        }
    }
    defer { close(descriptor) }
    var status = stat()
    guard fstat(descriptor, &status) == 0 else { throw failure("cannot read: \(String(cString: strerror(errno)))") }
    switch status.st_mode & S_IFMT {
    case S_IFREG: break
    case S_IFDIR: throw failure("is a directory, not \(what)")
    case S_IFIFO: throw failure("is not a regular file but a FIFO (named pipe), not \(what)")
    case S_IFCHR, S_IFBLK: throw failure("is not a regular file but a device, not \(what)")
    case S_IFSOCK: throw failure("is not a regular file but a socket, not \(what)")
    default: throw failure("is not a regular file, not \(what)")
    }
    let size = Int(status.st_size)
    guard size <= limit else { throw failure("is \(size) bytes, more than the \(limit) bytes \(what) may have") }
    // Read to the end rather than trusting st_size: the file may change while it is read. Room for
    // one byte past the limit shows a file that grew past it.
    let capacity = limit == Int.max ? limit : limit + 1
    var bytes = [UInt8](repeating: 0, count: min(size + 1, capacity))
    var filled = 0
    while true {
        if filled == bytes.count {
            guard bytes.count < capacity else {
                throw failure("grew past the \(limit) bytes \(what) may have while it was read")
            }
            let (grown, overflow) = bytes.count.addingReportingOverflow(max(64 * 1024, bytes.count / 2))
            bytes.append(contentsOf: [UInt8](repeating: 0, count: (overflow ? capacity : min(grown, capacity)) - bytes.count))
        }
        let count = bytes.withUnsafeMutableBytes { buffer in
            read(descriptor, buffer.baseAddress! + filled, buffer.count - filled)
        }
        if count < 0 {
            if errno == EINTR { continue }
            throw failure("cannot read: \(String(cString: strerror(errno)))")
        }
        if count == 0 { break }
        filled += count
    }
    bytes.removeSubrange(filled...)
    return bytes
}
