import Foundation
import XCTest

/// What one run of the `mlpc` binary did.
struct CommandResult {
    var status: Int32
    var stdout: String
    var stderr: String
    var seconds: Double
    var timedOut: Bool
    /// True when the process died of a signal (a trap, an abort) instead of exiting.
    var killedBySignal: Bool

    var stderrLines: [String] { stderr.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) }
}

/// Runs the `mlpc` executable that `swift build` / `swift test` put next to the test bundle.
enum MLPCProcess {
    /// The repository root (this file is Tests/mlpcTests/MLPCProcess.swift).
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// Markers of a Swift runtime crash report; `mlpc` must never print one, whatever its input.
    static let crashMarkers = ["Fatal error", "Stack dump", "Program crashed", "Current stack trace", "Illegal instruction"]

    /// The places the products directory can be: the .xctest bundle's folder (macOS), the test
    /// executable's folder (Linux), or $MLPC_BINARY when set.
    static var candidatePaths: [String] {
        var paths: [String] = []
        if let explicit = ProcessInfo.processInfo.environment["MLPC_BINARY"], !explicit.isEmpty { paths.append(explicit) }
        for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
            paths.append(bundle.bundleURL.deletingLastPathComponent().appendingPathComponent("mlpc").path)
        }
        if let executable = Bundle.main.executableURL {
            paths.append(executable.deletingLastPathComponent().appendingPathComponent("mlpc").path)
        }
        paths.append(Bundle.main.bundleURL.appendingPathComponent("mlpc").path)
        if let first = CommandLine.arguments.first {
            paths.append(URL(fileURLWithPath: first).deletingLastPathComponent().appendingPathComponent("mlpc").path)
        }
        return paths
    }

    /// Polls every `interval` microseconds until `condition` holds, `process` has ended, or `seconds`
    /// have passed (the caller asserts what it needs afterwards).
    static func wait(for process: Process, upTo seconds: Double, every interval: useconds_t, until condition: () -> Bool) {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning, Date() < deadline, !condition() { usleep(interval) }
    }

    /// Whether a run in `directory` has recorded its first epoch (metrics.jsonl is not empty).
    static func firstEpochRecorded(in directory: String) -> Bool {
        (try? String(contentsOfFile: directory + "/metrics.jsonl", encoding: .utf8)).map { !$0.isEmpty } ?? false
    }

    static func binaryPath() throws -> String {
        let candidates = candidatePaths
        for path in candidates where FileManager.default.isExecutableFile(atPath: path) { return path }
        throw MissingBinary(searched: candidates)
    }

    struct MissingBinary: Error, CustomStringConvertible {
        var searched: [String]
        var description: String {
            "the mlpc executable was not found next to the test bundle; build it first (`swift build`). Looked at:\n  "
                + searched.joined(separator: "\n  ")
        }
    }

    /// Runs `mlpc arguments` (or `executable arguments`) in `directory` (default: the repository root)
    /// with a clean environment (no MLPC_DATA_DIR, no colour, and MNIST mirrors that refuse connections,
    /// so no test ever touches the network), killing it after `timeout` seconds. Output goes through
    /// files, so a large output cannot block the child.
    static func run(
        _ arguments: [String], in directory: String? = nil, environment extra: [String: String] = [:], timeout: Double = 60,
        executable: String? = nil
    ) throws -> CommandResult {
        let binary = try executable ?? binaryPath()
        let scratch = try createTemporaryDirectory("mlpc-out")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let stdoutPath = scratch + "/stdout"
        let stderrPath = scratch + "/stderr"
        _ = FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        guard let stdoutHandle = FileHandle(forWritingAtPath: stdoutPath), let stderrHandle = FileHandle(forWritingAtPath: stderrPath)
        else { throw CocoaError(.fileWriteUnknown) }

        var environment = ProcessInfo.processInfo.environment
        environment["MLPC_DATA_DIR"] = nil
        environment["NO_COLOR"] = "1"
        environment["MLPC_MNIST_MIRRORS"] = "http://127.0.0.1:1/"
        for (key, value) in extra { environment[key] = value }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.environment = environment
        process.currentDirectoryURL = URL(fileURLWithPath: directory ?? repositoryRoot)
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = stdoutHandle
        process.standardError = stderrHandle
        let finished = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in finished.signal() }
        let start = Date()
        try process.run()
        var timedOut = false
        if finished.wait(timeout: .now() + timeout) == .timedOut {
            timedOut = true
            process.terminate()
            if finished.wait(timeout: .now() + 5) == .timedOut {
                kill(process.processIdentifier, SIGKILL)
                finished.wait()
            }
        }
        let seconds = Date().timeIntervalSince(start)
        try stdoutHandle.close()
        try stderrHandle.close()
        let read = { (path: String) in String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self) }
        return CommandResult(
            status: process.terminationStatus, stdout: read(stdoutPath), stderr: read(stderrPath), seconds: seconds,
            timedOut: timedOut, killedBySignal: process.terminationReason == .uncaughtSignal)
    }
}

/// Fails the test when `result` shows a crash, a hang or a Swift crash report.
func assertNoCrash(_ result: CommandResult, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertFalse(result.timedOut, "mlpc did not finish; stderr: \(result.stderr.prefix(2000))", file: file, line: line)
    XCTAssertFalse(
        result.killedBySignal, "mlpc died of signal \(result.status); stderr: \(result.stderr.prefix(2000))", file: file, line: line)
    for marker in MLPCProcess.crashMarkers {
        XCTAssertFalse(
            result.stderr.contains(marker), "stderr has a crash report (\(marker)): \(result.stderr.prefix(2000))", file: file, line: line)
    }
}

/// A fresh directory `label-<UUID>` in the system's temporary folder, removed with everything in it
/// when `test` ends, passed or failed, so repeated test runs leave nothing behind in /tmp.
func makeTemporaryDirectory(_ test: XCTestCase, _ label: String = "mlpc-test") throws -> String {
    let path = try createTemporaryDirectory(label)
    test.addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
    return path
}

/// A fresh directory `label-<UUID>` in the system's temporary folder that the caller removes: for
/// folders that outlive one test (a class's shared fixture) or belong to no test.
func createTemporaryDirectory(_ label: String) throws -> String {
    let path = NSTemporaryDirectory() + "\(label)-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func writeFile(_ path: String, _ text: String) throws {
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
}

func writeFile(_ path: String, bytes: [UInt8]) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

/// Parses `text` as JSON, failing the test with the text when it is not.
func jsonValue(_ text: String, file: StaticString = #filePath, line: UInt = #line) throws -> Any {
    do {
        return try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
    } catch {
        XCTFail("not JSON (\(error)): \(text.prefix(500))", file: file, line: line)
        throw error
    }
}

extension MLPCProcess {
    /// A listening socket that never answers: a download from it waits until the process is signalled.
    static func silentMirror() throws -> (socket: Int32, url: String) {
        #if canImport(Glibc)
        let stream = Int32(SOCK_STREAM.rawValue)
        #else
        let stream = SOCK_STREAM
        #endif
        let listener = socket(AF_INET, stream, 0)
        XCTAssertGreaterThanOrEqual(listener, 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) == 0 && getsockname(listener, $0, &length) == 0 }
        }
        XCTAssertTrue(bound)
        XCTAssertEqual(listen(listener, 16), 0)
        return (listener, "http://127.0.0.1:\(UInt16(bigEndian: address.sin_port))/")
    }
}
