import Foundation
import XCTest

/// Output faults: the run directory is claimed before training (created, writable, locked, not holding
/// another run), and a failing write never leaves a half-written file behind.
final class OutputFaultTests: XCTestCase {
    var folder = ""
    var specPath: String { folder + "/tiny.yaml" }
    var data: String { folder + "/data" }

    override func setUpWithError() throws {
        folder = try makeTemporaryDirectory(self, "mlpc-output-faults")
        try TinyDataset.write(to: data)
        try writeFile(specPath, TinyDataset.spec(epochs: 2))
    }

    func run(_ out: String, _ extra: [String] = []) throws -> CommandResult {
        let result = try MLPCProcess.run(["run", specPath, "--data-dir", data, "--out", out, "--quiet"] + extra)
        assertNoCrash(result)
        return result
    }

    /// No `.NAME.tmp-PID` file of an atomic write, and every JSON file there parses whole.
    func assertNothingHalfWritten(_ directory: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory)
        XCTAssertFalse(names.contains { $0.contains(".tmp-") }, "temporary files left: \(names)", file: file, line: line)
        if names.contains("run.json") {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: directory + "/run.json"))
            XCTAssertNoThrow(try JSONSerialization.jsonObject(with: bytes), "run.json is not whole", file: file, line: line)
        }
        if names.contains("metrics.jsonl") {
            let text = try String(contentsOfFile: directory + "/metrics.jsonl", encoding: .utf8)
            for record in text.split(separator: "\n") {
                XCTAssertNoThrow(try JSONSerialization.jsonObject(with: Data(record.utf8)), file: file, line: line)
            }
        }
    }

    func testExistingRunDirectoryIsRefusedWithoutOverwriteOrResume() throws {
        let out = folder + "/run"
        XCTAssertEqual(try run(out).status, 0)
        let before = try Data(contentsOf: URL(fileURLWithPath: out + "/weights.safetensors"))
        let again = try run(out)
        XCTAssertEqual(again.status, 2)
        XCTAssertTrue(again.stderr.contains("already holds a run"), again.stderr)
        XCTAssertTrue(again.stderr.contains("--overwrite"), again.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out + "/weights.safetensors")), before, "the old run was touched")
    }

    func testOverwriteReplacesTheOldRun() throws {
        let out = folder + "/run"
        XCTAssertEqual(try run(out).status, 0)
        let replaced = try run(out, ["--overwrite", "--epochs", "1"])
        XCTAssertEqual(replaced.status, 0, replaced.stderr)
        let record = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/run.json"))) as? [String: Any]
        XCTAssertEqual((record?["epoch_seconds"] as? [Double])?.count, 1)
    }

    /// --overwrite removes the old run only once the new one can start: bad data keeps the old run whole,
    /// and a refused run into a new directory leaves nothing behind.
    func testOverwriteRefusedForBadDataKeepsTheOldRun() throws {
        let out = folder + "/run"
        XCTAssertEqual(try run(out).status, 0)
        let before = try Data(contentsOf: URL(fileURLWithPath: out + "/weights.safetensors"))
        let missing = folder + "/no-such-data"
        let refused = try MLPCProcess.run(
            ["run", specPath, "--data-dir", missing, "--out", out, "--overwrite", "--quiet"],
            environment: ["MLPC_MNIST_MIRRORS": "http://127.0.0.1:1/"])
        assertNoCrash(refused)
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out + "/weights.safetensors")), before, "the old run was removed")
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/run.json"))

        let fresh = folder + "/new/run"
        let refusedFresh = try MLPCProcess.run(
            ["run", specPath, "--data-dir", missing, "--out", fresh, "--quiet"], environment: ["MLPC_MNIST_MIRRORS": "http://127.0.0.1:1/"])
        XCTAssertNotEqual(refusedFresh.status, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/new"), "a refused run left its directory")
    }

    func testOverwriteAndResumeTogetherAreRefused() throws {
        let result = try MLPCProcess.run(["run", "--resume", folder + "/run", "--overwrite"])
        XCTAssertEqual(result.status, 2)
        XCTAssertTrue(result.stderr.contains("--overwrite"), result.stderr)
    }

    func testOutputPathThatCannotBeCreatedIsRefusedBeforeTraining() throws {
        try writeFile(folder + "/plainfile", "not a directory")
        for out in [folder + "/plainfile/run", folder + "/plainfile", "/proc/mlpc-cannot-exist/run"] {
            let result = try run(out)
            XCTAssertEqual(result.status, 2, out)
            XCTAssertTrue(result.stderr.contains("run directory"), result.stderr)
            XCTAssertFalse(result.stdout.contains("Accuracy"), "training ran although the output cannot be written")
        }
    }

    func testSecondRunIntoTheSameDirectoryAtOnceIsRefused() throws {
        let out = folder + "/run"
        // The first run trains long enough to hold the lock while the second one starts.
        let first = Process()
        first.executableURL = URL(fileURLWithPath: try MLPCProcess.binaryPath())
        first.arguments = ["run", specPath, "--data-dir", data, "--out", out, "--quiet", "--epochs", "100000"]
        first.standardOutput = FileHandle.nullDevice
        first.standardError = FileHandle.nullDevice
        try first.run()
        defer {
            if first.isRunning { first.terminate() }
            first.waitUntilExit()
        }
        MLPCProcess.wait(for: first, upTo: 30, every: 20_000) { FileManager.default.fileExists(atPath: out + "/run.json") }
        XCTAssertTrue(first.isRunning, "the first run ended before the test could race it")
        let second = try run(out, ["--overwrite"])
        XCTAssertEqual(second.status, 2)
        XCTAssertTrue(second.stderr.contains("another mlpc run (pid \(first.processIdentifier)) is writing into it"), second.stderr)
        // The first run is still fine: SIGTERM makes it checkpoint and stop with status 3.
        first.terminate()
        first.waitUntilExit()
        XCTAssertEqual(first.terminationStatus, 3)
        try assertNothingHalfWritten(out)
    }

    func testLockIsReleasedWhenARunEnds() throws {
        let out = folder + "/run"
        XCTAssertEqual(try run(out).status, 0)
        XCTAssertEqual(try run(out, ["--overwrite"]).status, 0)
    }

    /// A full disk, simulated by a file-size limit: the first file over the limit fails with "File too
    /// large", the run stops with a clear error, and what is there is whole.
    func testWriteFailureStopsTheRunAndLeavesNoHalfWrittenFile() throws {
        if ProcessInfo.processInfo.environment["MLPC_TEST_SANITIZER"] == "thread" {
            // The ThreadSanitizer runtime faults (SIGBUS) under a file-size limit before mlpc runs; the
            // plain and AddressSanitizer passes run this test.
            throw XCTSkip("a file-size limit breaks the ThreadSanitizer runtime itself")
        }
        let out = folder + "/run"
        let binary = try MLPCProcess.binaryPath()
        let command = "ulimit -f 8; exec '\(binary)' run '\(specPath)' --data-dir '\(data)' --out '\(out)' --quiet"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationReason, .exit, "mlpc was killed instead of reporting the failed write")
        XCTAssertNotEqual(process.terminationStatus, 0)
        XCTAssertTrue(stderr.contains("File too large"), stderr)
        XCTAssertTrue(stderr.contains(out), stderr)
        XCTAssertFalse(stderr.contains("Fatal error"), stderr)
        try assertNothingHalfWritten(out)
        let record = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/run.json"))) as? [String: Any]
        XCTAssertEqual(record?["status"] as? String, "failed")
    }
}
