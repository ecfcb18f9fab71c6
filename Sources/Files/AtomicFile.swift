import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// An error writing an output file; names the file and what failed.
public struct FileWriteError: Error, CustomStringConvertible {
    public var path: String
    public var reason: String
    public var description: String { "\(path): cannot write: \(reason)" }

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
}

/// Writes `bytes` to `path` so that readers see either the old file or the complete new one, never a
/// part, and so that no write ever goes through a link:
///
/// - the folder is opened once as a descriptor (a run directory claimed by `RunDirectory` is already
///   open; any other folder is opened here, following links in the path the caller named);
/// - the temporary file `.NAME.tmp-PID-RANDOM` is created in it with openat(O_CREAT | O_EXCL |
///   O_NOFOLLOW): it is always a new regular file, never something planted at that name (a name taken
///   is retried with another random part);
/// - the file is written and fsynced, then renamed (renameat, within the folder) onto NAME: a link
///   at NAME is replaced by the regular file, never written through; the folder is fsynced;
/// - when the entry at NAME afterwards is not the file written (something swapped the temporary for
///   another entry between its creation and the rename), the write fails.
///
/// On any failure the temporary file is removed and the old file (if any) is untouched.
public func writeFileAtomically(_ bytes: UnsafeRawBufferPointer, to path: String) throws {
    let directory = (path as NSString).deletingLastPathComponent
    let base = (path as NSString).lastPathComponent
    guard !base.isEmpty, base != ".", base != ".." else { throw FileWriteError(path: path, reason: "not a file name") }
    let dfd: Int32
    if let pinned = try PinnedDirectories.descriptor(for: directory) {
        dfd = pinned
    } else {
        dfd = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dfd >= 0 else { throw FileWriteError(path: path, reason: "cannot open its folder: \(String(cString: strerror(errno)))") }
    }
    defer { close(dfd) }

    var tmp = ""
    var fd: Int32 = -1
    for _ in 0..<AtomicFileNames.attempts {
        tmp = AtomicFileNames.temporaryName(for: base, pid: getpid(), suffix: AtomicFileNames.randomSuffix())
        fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        if fd >= 0 || errno != EEXIST { break }
    }
    guard fd >= 0 else {
        let reason = errno == EEXIST ? "every temporary name tried was taken" : String(cString: strerror(errno))
        throw FileWriteError(path: path, reason: reason)
    }
    var renamed = false
    defer {
        close(fd)
        if !renamed { unlinkat(dfd, tmp, 0) }
    }
    func failure() -> FileWriteError { FileWriteError(path: path, reason: String(cString: strerror(errno))) }
    var written = 0
    while written < bytes.count {
        let n = write(fd, bytes.baseAddress!.advanced(by: written), bytes.count - written)
        if n < 0 {
            if errno == EINTR { continue }
            throw failure()
        }
        written += n
    }
    if fsync(fd) != 0 { throw failure() }
    var mine = stat()
    if fstat(fd, &mine) != 0 { throw failure() }
    AtomicFileNames.beforeRename?(dfd, tmp)
    if renameat(dfd, tmp, dfd, base) != 0 { throw failure() }
    renamed = true
    var placed = stat()
    guard fstatat(dfd, base, &placed, AT_SYMLINK_NOFOLLOW) == 0, placed.st_dev == mine.st_dev, placed.st_ino == mine.st_ino else {
        throw FileWriteError(
            path: path, reason: "its temporary file was replaced by something else while it was written; the entry now at that name is not mlpc's")
    }
    _ = fsync(dfd)
}

public func writeFileAtomically(_ bytes: [UInt8], to path: String) throws {
    try bytes.withUnsafeBytes { try writeFileAtomically($0, to: path) }
}

public func writeFileAtomically(_ text: String, to path: String) throws {
    try writeFileAtomically(Array(text.utf8), to: path)
}

/// The names of the temporary files of `writeFileAtomically`: `.NAME.tmp-PID-RANDOM`, RANDOM 16 hex digits
/// from the system's random source. (mlpc versions before the random part wrote `.NAME.tmp-PID`.)
package enum AtomicFileNames {
    static let attempts = 16

    static func temporaryName(for base: String, pid: pid_t, suffix: UInt64) -> String {
        let hex = String(suffix, radix: 16)
        return ".\(base).tmp-\(pid)-" + String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// The writer's pid when `name` is a temporary name of one of `bases`, in the current or the older
    /// form; nil for any other name.
    package static func writerPID(ofTemporary name: String, bases: [String]) -> pid_t? {
        for base in bases {
            let prefix = ".\(base).tmp-"
            guard name.hasPrefix(prefix) else { continue }
            let rest = name.dropFirst(prefix.count)
            let parts = rest.split(separator: "-", omittingEmptySubsequences: false)
            guard parts.count == 1 || (parts.count == 2 && parts[1].count == 16 && parts[1].allSatisfy(\.isHexDigit)) else { return nil }
            let digits = parts[0]
            guard !digits.isEmpty, digits.count <= 10, digits.allSatisfy({ $0.isASCII && $0.isNumber }), digits.first != "0",
                let pid = Int32(digits), pid > 0
            else { return nil }
            return pid
        }
        return nil
    }

    /// The random part of the next temporary name; tests replace it to force a name that is taken.
    nonisolated(unsafe) static var randomSuffix: () -> UInt64 = { UInt64.random(in: .min ... .max) }
    /// Called between writing the temporary file and renaming it; tests use it to tamper with the folder.
    nonisolated(unsafe) static var beforeRename: ((Int32, String) -> Void)?
}

/// Run directories open while claimed: `writeFileAtomically` creates files in them through the
/// descriptor opened when the directory was claimed, so every file of a run lands in the directory that
/// was claimed and checked, whatever happens to the path afterwards.
package enum PinnedDirectories {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var table: [String: Int32] = [:]

    /// The path as a key: repeated and trailing slashes and leading "./" removed.
    static func key(_ path: String) -> String {
        var parts = path.split(separator: "/", omittingEmptySubsequences: true)
        while parts.first == "." && parts.count > 1 { parts.removeFirst() }
        let joined = parts.joined(separator: "/")
        if path.hasPrefix("/") { return "/" + joined }
        return joined.isEmpty ? "." : joined
    }

    package static func pin(_ path: String, descriptor: Int32) {
        lock.lock()
        table[key(path)] = descriptor
        lock.unlock()
    }

    package static func unpin(_ path: String, descriptor: Int32) {
        lock.lock()
        if table[key(path)] == descriptor { table[key(path)] = nil }
        lock.unlock()
    }

    /// A duplicate of the pinned descriptor of `directory` (the caller closes it), or nil.
    static func descriptor(for directory: String) throws -> Int32? {
        lock.lock()
        defer { lock.unlock() }
        guard let fd = table[key(directory.isEmpty ? "." : directory)] else { return nil }
        let copy = fcntl(fd, F_DUPFD_CLOEXEC, 0)
        guard copy >= 0 else { throw FileWriteError(path: directory, reason: String(cString: strerror(errno))) }
        return copy
    }
}
