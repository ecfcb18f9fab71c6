import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// An error writing an output file; names the file and what failed.
public struct FileWriteError: Error, CustomStringConvertible {
    public var path: String
    public var reason: String
    public var description: String { "\(path): cannot write: \(reason)" }
}

/// Writes `bytes` to `path` so that readers see either the old file or the complete new one, never a
/// part: write a temporary file beside it, fsync it, rename it over the target, fsync the folder.
/// On any failure the temporary file is removed and the old file (if any) is untouched.
public func writeFileAtomically(_ bytes: UnsafeRawBufferPointer, to path: String) throws {
    let directory = (path as NSString).deletingLastPathComponent
    let base = (path as NSString).lastPathComponent
    let tmp = (directory.isEmpty ? "" : directory + "/") + ".\(base).tmp-\(getpid())"
    let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw FileWriteError(path: path, reason: String(cString: strerror(errno))) }
    var ok = false
    defer {
        if !ok { unlink(tmp) }
    }
    var written = 0
    while written < bytes.count {
        let n = write(fd, bytes.baseAddress!.advanced(by: written), bytes.count - written)
        if n < 0 {
            if errno == EINTR { continue }
            let reason = String(cString: strerror(errno))
            close(fd)
            throw FileWriteError(path: path, reason: reason)
        }
        written += n
    }
    if fsync(fd) != 0 {
        let reason = String(cString: strerror(errno))
        close(fd)
        throw FileWriteError(path: path, reason: reason)
    }
    if close(fd) != 0 { throw FileWriteError(path: path, reason: String(cString: strerror(errno))) }
    if rename(tmp, path) != 0 { throw FileWriteError(path: path, reason: String(cString: strerror(errno))) }
    ok = true
    let dfd = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY)
    if dfd >= 0 {
        _ = fsync(dfd)
        close(dfd)
    }
}

public func writeFileAtomically(_ bytes: [UInt8], to path: String) throws {
    try bytes.withUnsafeBytes { try writeFileAtomically($0, to: path) }
}

public func writeFileAtomically(_ text: String, to path: String) throws {
    try writeFileAtomically(Array(text.utf8), to: path)
}
