import Figures
import Files
import DataSources
import Execution
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The directory a run writes into, claimed before any training starts: created if needed, checked to
/// be writable, locked against a second mlpc writing into it at the same time, and refused when it
/// already holds a run unless the caller means to replace it (--overwrite) or continue it (--resume).
/// The lock is an flock on `.mlpc.lock`: the kernel releases it when the process ends, however it ends,
/// so a crash never leaves a stale lock.
///
/// Links: the directory is opened once, when claimed (a symbolic link named as the directory itself, or
/// in the path to it, is followed: the user named it); every file of the run is then created inside
/// that open directory, and no name inside it is ever followed (see `writeFileAtomically`). A lock
/// file that is not a regular file of its own (a symbolic link, dangling or not, a directory, a FIFO,
/// a file with other hard links) is refused, and nothing in the directory is touched.
///
/// Whose files: a directory holds a run only when mlpc's own record says so (a run.json that decodes as
/// mlpc's run record, or a checkpoint whose metadata format is "mlpc.checkpoint"). Anything else at the
/// name of a run file (a user's own spec.yaml, a link, a directory) is foreign: a new run is refused
/// naming it, and --overwrite, which replaces only a previous run's files, is refused before anything
/// is removed.
///
/// Nothing in the directory changes until `beginRun()`, which the caller calls once the run can start
/// (spec planned, data loaded and verified): an --overwrite refused for bad data keeps the old run, and a
/// directory this claim created is removed again when the run never began.
public final class RunDirectory {
    public enum Mode: Equatable {
        /// A new run: the directory must not hold one already.
        case fresh
        /// A new run replacing the one in the directory: its files are removed when it begins.
        case overwrite
        /// Continuing the run in the directory.
        case resume
    }

    /// Every file `mlpc run` writes into a run directory.
    public static let runFiles = [
        "run.json", "metrics.jsonl", "spec.yaml", Checkpoint.fileName, "weights.safetensors", "model.safetensors",
        RunPictureName.samples, RunPictureName.predictions, RunPictureName.curves, RunPictureName.confusion,
    ]
    static let lockName = ".mlpc.lock"

    public let path: String
    public let mode: Mode
    /// The directory, opened when it was claimed; files are created through it.
    private let directoryDescriptor: Int32
    private let lockDescriptor: Int32
    /// The directories this claim created, outermost first.
    private let createdDirectories: [String]
    /// Run files found in the directory when it was claimed (each one the previous run's).
    private let existing: [String]
    /// Whether the directory held an mlpc run (its record, or its lock) when it was claimed: only then
    /// may a killed writer's temporary files be in it.
    private let heldRun: Bool
    /// Whether `beginRun()` was called.
    public private(set) var began = false
    /// Whether this claim made the lock file (else it was left by an earlier run, and stays).
    private let createdLockFile: Bool

    public init(path: String, mode: Mode) throws {
        self.path = path
        self.mode = mode
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw RunDirectoryError(path: path, reason: "it is a file, not a directory")
        }
        let created = try RunDirectory.makeDirectories(path)
        let dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dfd >= 0 else {
            let reason = "cannot open it: \(String(cString: strerror(errno)))"
            RunDirectory.removeDirectories(created)
            throw RunDirectoryError(path: path, reason: reason)
        }
        let lock: (descriptor: Int32, existed: Bool)
        do {
            lock = try RunDirectory.openLock(in: dfd, path: path)
        } catch {
            close(dfd)
            RunDirectory.removeDirectories(created)
            throw error
        }
        let fd = lock.descriptor
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            var buffer = [UInt8](repeating: 0, count: 32)
            let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
            let holder = String(decoding: buffer.prefix(max(0, count)), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            close(fd)
            close(dfd)
            let who = holder.isEmpty || !holder.allSatisfy(\.isNumber) ? "" : " (pid \(holder))"
            throw RunDirectoryError(path: path, reason: "another mlpc run\(who) is writing into it; wait for it or choose another --out")
        }
        // The lock is a regular file of its own, opened without following a link: the pid goes into it.
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        directoryDescriptor = dfd
        lockDescriptor = fd
        createdDirectories = created
        createdLockFile = !lock.existed
        let survey = RunDirectory.survey(dfd)
        existing = survey.present.filter { name in !survey.foreign.contains { $0.name == name } }
        heldRun = survey.isRun || lock.existed
        PinnedDirectories.pin(path, descriptor: dfd)
        // (deinit releases the lock of a refused claim.)
        switch mode {
        case .fresh:
            guard !survey.present.isEmpty else { break }
            guard survey.isRun else {
                throw RunDirectoryError(
                    path: path,
                    reason: "it holds files that are not an mlpc run's (\(RunDirectory.describe(survey.foreign))), at names a run writes; mlpc does not replace them: move them away, or choose another --out")
            }
            guard survey.foreign.isEmpty else {
                throw RunDirectoryError(
                    path: path,
                    reason: "it holds a run and, at names a run writes, files that are not the run's (\(RunDirectory.describe(survey.foreign))); mlpc does not replace them: move them away, or choose another --out")
            }
            guard existing.contains(Checkpoint.fileName) else {
                // No checkpoint: nothing to continue, so --resume is no advice. A run killed before its
                // first checkpoint has nothing to keep; a finished one (its model is there) may.
                let finished = existing.contains("model.safetensors")
                throw RunDirectoryError(
                    path: path,
                    reason: finished
                        ? "it already holds a finished run (\(RunDirectory.list(existing))); pass --overwrite to replace it, or choose another --out"
                        : "it holds a run that stopped before its first checkpoint (\(RunDirectory.list(existing))); pass --overwrite to start it again, or choose another --out")
            }
            throw RunDirectoryError(
                path: path,
                reason: "it already holds a run (\(RunDirectory.list(existing))); pass --overwrite to replace it, --resume \(path) to continue it, or choose another --out")
        case .overwrite:
            try RunDirectory.checkReplaceable(survey, path: path, descriptor: dfd)
        case .resume:
            break
        }
    }

    /// The run starts writing: with --overwrite the old run's files go now (after checking again that
    /// every one of them is the old run's and can be removed: otherwise nothing is), and temporary files
    /// a killed mlpc left behind are removed.
    public func beginRun() throws {
        // From here on the directory holds this run: a signal must not remove it.
        StartupCleanup.count = 0
        if mode == .overwrite {
            let survey = RunDirectory.survey(directoryDescriptor)
            try RunDirectory.checkReplaceable(survey, path: path, descriptor: directoryDescriptor)
            // run.json last, and not at all: the new run's record replaces it, so that a failure part
            // way leaves a directory that is still recognisably the old run's.
            for name in survey.present where name != "run.json" {
                if unlinkat(directoryDescriptor, name, 0) != 0 && errno != ENOENT {
                    throw RunDirectoryError(path: path, reason: "cannot remove \(name) of the old run: \(String(cString: strerror(errno)))")
                }
            }
        }
        began = true
        if heldRun { removeStaleTemporaryFiles() }
    }

    /// --overwrite replaces only a previous run's files, and only when it can replace all of them.
    private static func checkReplaceable(_ survey: Survey, path: String, descriptor: Int32) throws {
        guard !survey.present.isEmpty else { return }
        guard survey.isRun else {
            throw RunDirectoryError(
                path: path,
                reason: "it holds files that are not an mlpc run's (\(describe(survey.foreign))), at names a run writes; --overwrite replaces only a previous run's files, so nothing was removed: move them away, or choose another --out")
        }
        guard survey.foreign.isEmpty else {
            throw RunDirectoryError(
                path: path,
                reason: "at names a run writes it holds files that are not the old run's (\(describe(survey.foreign))); --overwrite replaces only a previous run's files, so nothing was removed: move them away, or choose another --out")
        }
        if faccessat(descriptor, ".", W_OK | X_OK, AT_EACCESS) != 0 {
            throw RunDirectoryError(
                path: path, reason: "cannot replace the old run's files (\(String(cString: strerror(errno)))); nothing was removed")
        }
    }

    /// What is at the names of run files, and whether mlpc's record says the directory holds a run.
    struct Survey {
        /// Run file names with an entry (of any kind).
        var present: [String] = []
        /// Entries that are not the run's, with why.
        var foreign: [(name: String, why: String)] = []
        var isRun = false
    }

    static func survey(_ dfd: Int32) -> Survey {
        var survey = Survey()
        var kinds: [String: mode_t] = [:]
        for name in runFiles {
            var info = stat()
            guard fstatat(dfd, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            survey.present.append(name)
            kinds[name] = info.st_mode & S_IFMT
        }
        // mlpc's record: run.json as mlpc writes it, else the checkpoint's metadata.
        var specSHA256: String?
        var recordIsMLPC = false
        if kinds["run.json"] == S_IFREG, let bytes = readEntry(dfd, "run.json", limit: 64 << 20),
            let record = try? JSONDecoder().decode(RunRecord.self, from: Data(bytes))
        {
            recordIsMLPC = true
            survey.isRun = true
            specSHA256 = record.specSHA256
        }
        let checkpoint = kinds[Checkpoint.fileName] == S_IFREG ? safetensorsMetadata(dfd, Checkpoint.fileName) : nil
        let checkpointIsMLPC = checkpoint?[ArtifactMetadataKey.format] == ArtifactMetadataKey.checkpointFormat
        if checkpointIsMLPC {
            survey.isRun = true
            specSHA256 = specSHA256 ?? checkpoint?[ArtifactMetadataKey.specSHA256]
        }
        for name in survey.present {
            let kind = kinds[name]!
            guard kind == S_IFREG else {
                let what = kind == S_IFLNK ? "a symbolic link" : kind == S_IFDIR ? "a directory" : "not a regular file"
                survey.foreign.append((name, what))
                continue
            }
            guard survey.isRun else {
                let why =
                    name == "run.json"
                    ? "not mlpc's run record" : name == Checkpoint.fileName ? "not an mlpc checkpoint" : "not written by mlpc (no mlpc run record beside it)"
                survey.foreign.append((name, why))
                continue
            }
            switch name {
            case "run.json" where !recordIsMLPC:
                survey.foreign.append((name, "not mlpc's run record"))
            case Checkpoint.fileName where !checkpointIsMLPC:
                survey.foreign.append((name, "not an mlpc checkpoint"))
            case "model.safetensors" where safetensorsMetadata(dfd, name)?[ArtifactMetadataKey.format] != ArtifactMetadataKey.modelFormat:
                survey.foreign.append((name, "not an mlpc model file"))
            case "spec.yaml":
                let hash = readEntry(dfd, name, limit: 64 << 20).map { SHA256.hash($0).hex }
                if hash == nil || hash != specSHA256 { survey.foreign.append((name, "not the run's copy of its spec")) }
            default:
                break
            }
        }
        return survey
    }

    /// The bytes of the regular file `name` in the directory, read without following a link; nil when it
    /// is not one, cannot be read, or is larger than `limit`.
    static func readEntry(_ dfd: Int32, _ name: String, limit: Int) -> [UInt8]? {
        let fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG, Int(info.st_size) <= limit else { return nil }
        return readFully(fd, count: Int(info.st_size), at: 0)
    }

    /// The `__metadata__` of the safetensors file `name` (its header only), or nil.
    static func safetensorsMetadata(_ dfd: Int32, _ name: String) -> [String: String]? {
        let fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG, let prefix = readFully(fd, count: 8, at: 0) else { return nil }
        let length = prefix.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard length > 0, length <= UInt64(SafetensorsFile.maximumHeaderLength), length <= UInt64(info.st_size) - 8,
            let header = readFully(fd, count: Int(length), at: 8)
        else { return nil }
        return SafetensorsFile.metadata(ofHeader: header)
    }

    /// `count` bytes of `fd` from `offset`, or nil when they cannot all be read.
    static func readFully(_ fd: Int32, count: Int, at offset: Int) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, count - done, off_t(offset + done)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return nil }
            done += n
        }
        return bytes
    }

    /// Opens `.mlpc.lock` in the directory, creating it if needed, never through a link: a lock that is
    /// not a regular file of its own is refused, naming it.
    static func openLock(in dfd: Int32, path: String) throws -> (descriptor: Int32, existed: Bool) {
        let lockPath = path + "/" + lockName
        func refuse(_ what: String) -> RunDirectoryError {
            RunDirectoryError(
                path: path,
                reason: "its lock file \(lockPath) is \(what), not mlpc's lock file; mlpc does not write through it. Remove it, or choose another --out")
        }
        func check(_ info: stat) throws {
            switch info.st_mode & S_IFMT {
            case S_IFREG: if info.st_nlink > 1 { throw refuse("a file with other hard links") }
            case S_IFLNK: throw refuse("a symbolic link")
            case S_IFDIR: throw refuse("a directory")
            case S_IFIFO: throw refuse("a FIFO")
            default: throw refuse("not a regular file")
            }
        }
        var info = stat()
        let existed = fstatat(dfd, lockName, &info, AT_SYMLINK_NOFOLLOW) == 0
        if existed { try check(info) }
        let fd = openat(dfd, lockName, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            if errno == ELOOP { throw refuse("a symbolic link") }
            throw RunDirectoryError(path: path, reason: "cannot write into it: \(String(cString: strerror(errno)))")
        }
        // Checked again on what was opened: the entry may have changed since.
        guard fstat(fd, &info) == 0 else {
            close(fd)
            throw RunDirectoryError(path: path, reason: "cannot write into it: \(String(cString: strerror(errno)))")
        }
        do { try check(info) } catch {
            close(fd)
            throw error
        }
        return (fd, existed)
    }

    /// Until the run begins (while the data loads, which may mean downloading it), Ctrl-C and SIGTERM
    /// end mlpc at once, as their default does; with this they first remove what this claim created, as
    /// when mlpc refuses a run: the lock file, then the directories (rmdir: only if empty). A handler
    /// may only make async-signal-safe calls, so the paths are C strings prepared here. Installing the
    /// training's own handler (which lets the current step finish) replaces this one.
    public func removeOnSignalUntilRunBegins() {
        guard !createdDirectories.isEmpty else { return }
        let paths = [path + "/" + RunDirectory.lockName] + createdDirectories.reversed()
        StartupCleanup.count = 0
        for (index, text) in paths.prefix(StartupCleanup.capacity).enumerated() { StartupCleanup.paths[index] = strdup(text) }
        StartupCleanup.count = min(paths.count, StartupCleanup.capacity)
        let handler: @convention(c) (Int32) -> Void = { signal in
            for index in 0..<StartupCleanup.count {
                guard let path = StartupCleanup.paths[index] else { continue }
                if index == 0 { unlink(path) } else { rmdir(path) }
            }
            _exit(128 + signal)
        }
        for number in [SIGINT, SIGTERM] where !signalIsIgnored(number) { signal(number, handler) }
    }

    /// mkdir -p, reporting the component that failed and why; returns the directories it created,
    /// outermost first (removed again when it fails part way).
    static func makeDirectories(_ path: String) throws -> [String] {
        var prefix = path.hasPrefix("/") ? "" : "."
        var created: [String] = []
        for component in path.split(separator: "/") {
            prefix += "/" + component
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: prefix, isDirectory: &isDirectory) {
                if !isDirectory.boolValue {
                    removeDirectories(created)
                    throw RunDirectoryError(path: path, reason: "\(prefix) is a file, not a directory")
                }
                continue
            }
            if mkdir(prefix, 0o755) != 0 {
                if errno == EEXIST { continue }
                let reason = "cannot create \(prefix): \(String(cString: strerror(errno)))"
                removeDirectories(created)
                throw RunDirectoryError(path: path, reason: reason)
            }
            created.append(prefix)
        }
        return created
    }

    /// Removes directories this process created, innermost first; rmdir leaves any that are not empty.
    static func removeDirectories(_ directories: [String]) {
        for directory in directories.reversed() { rmdir(directory) }
    }

    static func list(_ names: [String]) -> String {
        names.count <= 3 ? names.joined(separator: ", ") : names.prefix(3).joined(separator: ", ") + " and \(names.count - 3) more"
    }

    /// "spec.yaml: not the run's copy of its spec; run.json: a symbolic link", every one named.
    static func describe(_ entries: [(name: String, why: String)]) -> String {
        entries.map { "\($0.name): \($0.why)" }.joined(separator: "; ")
    }

    deinit {
        PinnedDirectories.unpin(path, descriptor: directoryDescriptor)
        // A run that never began leaves no trace in a directory it created: the lock file goes, then the
        // directories (only if empty).
        if !began && createdLockFile { unlinkat(directoryDescriptor, RunDirectory.lockName, 0) }
        flock(lockDescriptor, LOCK_UN)
        close(lockDescriptor)
        close(directoryDescriptor)
        if !began { RunDirectory.removeDirectories(createdDirectories) }
    }

    /// Temporary files of an atomic write that a killed mlpc left behind, and only those: the name of a
    /// temporary of one of the run's own files (`.NAME.tmp-PID-RANDOM`, or `.NAME.tmp-PID` of older
    /// versions), a regular file, and a writer that is no longer alive. A user's `.thesis.tex.tmp-42`,
    /// a link, or the temporary of a live process stays.
    private func removeStaleTemporaryFiles() {
        let listing = fcntl(directoryDescriptor, F_DUPFD_CLOEXEC, 0)
        guard listing >= 0, let stream = fdopendir(listing) else {
            if listing >= 0 { close(listing) }
            return
        }
        rewinddir(stream)
        var names: [String] = []
        while let entry = readdir(stream) {
            names.append(withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) })
        }
        closedir(stream)
        for name in names {
            guard let pid = AtomicFileNames.writerPID(ofTemporary: name, bases: RunDirectory.runFiles), pid != getpid() else { continue }
            var info = stat()
            guard fstatat(directoryDescriptor, name, &info, AT_SYMLINK_NOFOLLOW) == 0, info.st_mode & S_IFMT == S_IFREG else { continue }
            guard kill(pid, 0) != 0 && errno == ESRCH else { continue }
            unlinkat(directoryDescriptor, name, 0)
        }
    }
}

/// Whether `signal` is ignored in this process, as a shell leaves SIGINT for a job started in the
/// background (`mlpc run ... &`) or nohup SIGHUP: such a signal is not meant for it, so mlpc keeps
/// ignoring it rather than installing its own handler.
public func signalIsIgnored(_ number: Int32) -> Bool {
    // signal() is the portable way to read the disposition (sigaction's handler field is named
    // differently by glibc and Darwin): set it to ignored for an instant and put the old one back.
    let previous = signal(number, SIG_IGN)
    signal(number, previous)
    return unsafeBitCast(previous, to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self)
}

/// The paths `removeOnSignalUntilRunBegins` removes: the lock file, then directories, innermost first.
/// Fixed storage, written before the handler is installed, so the handler allocates nothing.
private enum StartupCleanup {
    static let capacity = 256
    nonisolated(unsafe) static var paths = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: capacity)
    nonisolated(unsafe) static var count = 0
}

public struct RunDirectoryError: Error, CustomStringConvertible {
    public var path: String
    public var reason: String
    public var description: String { "run directory \(path): \(reason)" }
}
