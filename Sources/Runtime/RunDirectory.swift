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
    private let lockDescriptor: Int32
    /// The directories this claim created, outermost first.
    private let createdDirectories: [String]
    /// Run files found in the directory when it was claimed.
    private let existing: [String]
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
        let lockPath = path + "/" + RunDirectory.lockName
        var lockInfo = stat()
        let lockExisted = lstat(lockPath, &lockInfo) == 0
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            let reason = "cannot write into it: \(String(cString: strerror(errno)))"
            RunDirectory.removeDirectories(created)
            throw RunDirectoryError(path: path, reason: reason)
        }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let holder = (try? String(contentsOfFile: lockPath, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            close(fd)
            let who = holder.flatMap { $0.isEmpty ? nil : " (pid \($0))" } ?? ""
            throw RunDirectoryError(path: path, reason: "another mlpc run\(who) is writing into it; wait for it or choose another --out")
        }
        lockDescriptor = fd
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }

        createdDirectories = created
        createdLockFile = !lockExisted
        existing = RunDirectory.runFiles.filter { FileManager.default.fileExists(atPath: path + "/" + $0) }
        if mode == .fresh && !existing.isEmpty {
            // Set up enough for deinit to release the lock.
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
        }
    }

    /// The run starts writing: with --overwrite the old run's files go now, and temporary files a killed
    /// process left behind are removed.
    public func beginRun() throws {
        // From here on the directory holds this run: a signal must not remove it.
        StartupCleanup.count = 0
        if mode == .overwrite {
            for name in existing where unlink(path + "/" + name) != 0 && errno != ENOENT {
                throw RunDirectoryError(path: path, reason: "cannot remove \(name) of the old run: \(String(cString: strerror(errno)))")
            }
        }
        began = true
        removeStaleTemporaryFiles()
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

    deinit {
        // A run that never began leaves no trace in a directory it created: the lock file goes, then the
        // directories (only if empty).
        if !began && createdLockFile { unlink(path + "/" + RunDirectory.lockName) }
        flock(lockDescriptor, LOCK_UN)
        close(lockDescriptor)
        if !began { RunDirectory.removeDirectories(createdDirectories) }
    }

    /// Temporary files of an atomic write that a killed process left behind (`.NAME.tmp-PID`).
    private func removeStaleTemporaryFiles() {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: path) else { return }
        for name in names where name.hasPrefix(".") && name.contains(".tmp-") { unlink(path + "/" + name) }
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
