import Foundation
import SpecParser

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

    public var description: String { "\(pathForMessage(path)): \(reason)" }
}

/// The bytes of the regular file at `path` (SpecParser's `readRegularFileBytes`: opened non-blocking,
/// its type checked before anything is read, so a FIFO or a device never blocks the reader or floods
/// it); `what` names what the file should be ("a model file") in the messages. Throws
/// `FileAccessError` when the path cannot be read; a file over `limit` bytes is one too.
public func readRegularFile(path: String, what: String, limit: Int = Int.max) throws -> [UInt8] {
    switch readRegularFileBytes(path: path, limit: limit) {
    case .success(let bytes):
        return bytes
    case .failure(let failure):
        let reason: String
        switch failure {
        case .cannotOpen(ENOENT): reason = "no such file"
        case .cannotOpen(ENOTDIR): reason = "no such file (a part of the path is not a directory)"
        case .cannotOpen(let code): reason = "cannot open: \(String(cString: strerror(code)))"
        case .cannotRead(let code): reason = "cannot read: \(String(cString: strerror(code)))"
        case .directory: reason = "is a directory, not \(what)"
        case .notRegular(S_IFIFO): reason = "is not a regular file but a FIFO (named pipe), not \(what)"
        case .notRegular(S_IFCHR), .notRegular(S_IFBLK): reason = "is not a regular file but a device, not \(what)"
        case .notRegular(S_IFSOCK): reason = "is not a regular file but a socket, not \(what)"
        case .notRegular: reason = "is not a regular file, not \(what)"
        case .tooLarge(let size): reason = "is \(size) bytes, more than the \(limit) bytes \(what) may have"
        case .grewPastLimit: reason = "grew past the \(limit) bytes \(what) may have while it was read"
        }
        throw FileAccessError(path: path, reason: reason)
    }
}
