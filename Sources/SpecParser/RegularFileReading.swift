#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Why a path could not be read as a regular file. Each reader words it for its own messages (a spec,
/// a model file, a picture); the reading itself is one piece of code.
public enum RegularFileFailure: Error, Equatable, Sendable {
    /// open(2) failed with this errno (ENOENT: no such file; ENOTDIR: a part of the path is a file).
    case cannotOpen(errno: Int32)
    /// fstat(2) or read(2) failed with this errno.
    case cannotRead(errno: Int32)
    case directory
    /// A FIFO, a device, a socket: the file type bits (`st_mode & S_IFMT`).
    case notRegular(type: mode_t)
    /// The file's size was over the limit before reading.
    case tooLarge(size: Int)
    /// The file grew past the limit while it was read; `size` is what was read by then.
    case grewPastLimit(size: Int)
}

/// The bytes of the regular file at `path`, at most `limit` of them. The file is opened non-blocking
/// and its type checked before anything is read, so a FIFO never blocks the reader and a device such
/// as /dev/zero never floods it; it is read to its end rather than trusting its size, which may change
/// while it is read.
public func readRegularFileBytes(path: String, limit: Int = Int.max) -> Result<[UInt8], RegularFileFailure> {
    let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
    guard descriptor >= 0 else { return .failure(.cannotOpen(errno: errno)) }
    defer { close(descriptor) }
    var status = stat()
    guard fstat(descriptor, &status) == 0 else { return .failure(.cannotRead(errno: errno)) }
    let type = status.st_mode & S_IFMT
    if type == S_IFDIR { return .failure(.directory) }
    guard type == S_IFREG else { return .failure(.notRegular(type: type)) }
    let size = Int(status.st_size)
    guard size <= limit else { return .failure(.tooLarge(size: size)) }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(size == Int.max ? size : size + 1)
    var chunk = [UInt8](repeating: 0, count: 64 * 1024)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        if count < 0 {
            if errno == EINTR { continue }
            return .failure(.cannotRead(errno: errno))
        }
        if count == 0 { break }
        bytes.append(contentsOf: chunk[0..<count])
        if bytes.count > limit { return .failure(.grewPastLimit(size: bytes.count)) }
    }
    return .success(bytes)
}
