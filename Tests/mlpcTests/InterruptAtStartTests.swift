import Foundation
import XCTest

/// Ctrl-C as a run starts: once the run directory is being filled in, the signal must end in a
/// checkpoint (exit 3) that --resume continues; a run killed before its first checkpoint is named as
/// such, and starting it again is the advice.
final class InterruptAtStartTests: XCTestCase {
    var root = ""

    override func setUpWithError() throws {
        root = try makeTemporaryDirectory(self, "mlpc-interrupt-start")
        try ArtifactCLI.writeDataset(into: root, trainCount: 12000)
        try ArtifactCLI.spec(hidden: 32, epochs: 30, batch: 4).write(toFile: root + "/tiny.yaml", atomically: true, encoding: .utf8)
    }

    /// The signal arrives the moment spec.yaml appears, before the first epoch's checkpoint.
    func testASignalAsTheDirectoryIsFilledInEndsInACheckpoint() throws {
        for signal in [SIGINT, SIGTERM] {
            let dir = root + "/run-\(signal)"
            let (child, out, err) = try ArtifactCLI.process(["run", root + "/tiny.yaml", "--data-dir", root, "--out", dir, "--quiet"])
            try child.run()
            MLPCProcess.wait(for: child, upTo: 60, every: 200) { FileManager.default.fileExists(atPath: dir + "/spec.yaml") }
            XCTAssertTrue(child.isRunning, "the run ended before it could be interrupted")
            kill(child.processIdentifier, signal)
            let result = ArtifactCLI.finish(child, out, err)
            XCTAssertEqual(result.status, 3, "signal \(signal): \(result.error)")
            XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/checkpoint.safetensors"), "signal \(signal)")
            let names = try FileManager.default.contentsOfDirectory(atPath: dir)
            XCTAssertFalse(names.contains { $0.contains(".tmp-") }, "temporary files left: \(names)")
            let resumed = try ArtifactCLI.run(["run", "--resume", dir, "--epochs", "1", "--quiet"])
            XCTAssertEqual(resumed.status, 0, resumed.error)
        }
    }

    /// Ctrl-C while the data downloads ends mlpc at once, and the run directory it had just created goes
    /// with it. The "mirror" accepts connections and never answers, so the download waits.
    func testASignalWhileTheDataDownloadsRemovesTheNewRunDirectory() throws {
        let mirror = try MLPCProcess.silentMirror()
        defer { close(mirror.socket) }

        let data = root + "/not-yet"
        let out = root + "/runs/new/run"
        let (child, stdout, stderr) = try ArtifactCLI.process(
            ["run", root + "/tiny.yaml", "--data-dir", data, "--out", out, "--quiet"],
            environment: ["MLPC_MNIST_MIRRORS": mirror.url])
        try child.run()
        // The data directory is made just before the first download starts.
        MLPCProcess.wait(for: child, upTo: 30, every: 1_000) { FileManager.default.fileExists(atPath: data) }
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/.mlpc.lock"), "the run directory was not claimed")
        usleep(200_000)
        XCTAssertTrue(child.isRunning, "the download did not wait")
        kill(child.processIdentifier, SIGINT)
        let result = ArtifactCLI.finish(child, stdout, stderr)
        XCTAssertEqual(result.status, 130, result.error)
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/runs"), "the interrupted run left its directory")
    }

    /// A job a shell started with SIGINT ignored (`mlpc run ... &` in a script) keeps ignoring it: the
    /// interrupt was not meant for it, and the run completes.
    func testAnIgnoredSIGINTStaysIgnored() throws {
        let dir = root + "/background"
        let shell = Process()
        shell.executableURL = URL(fileURLWithPath: "/bin/sh")
        shell.arguments = [
            "-c", #"trap '' INT; exec "$0" run "$1" --data-dir "$2" --out "$3" --epochs 4 --quiet"#, try MLPCProcess.binaryPath(),
            root + "/tiny.yaml", root, dir,
        ]
        shell.standardOutput = FileHandle.nullDevice
        shell.standardError = FileHandle.nullDevice
        try shell.run()
        MLPCProcess.wait(for: shell, upTo: 60, every: 2_000) { MLPCProcess.firstEpochRecorded(in: dir) }
        XCTAssertTrue(shell.isRunning, "the run ended before it could be interrupted")
        kill(shell.processIdentifier, SIGINT)
        shell.waitUntilExit()
        XCTAssertEqual(shell.terminationStatus, 0)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/weights.safetensors"))
    }

    /// A finished run whose checkpoint was deleted cannot be continued, and the advice must not be to
    /// overwrite it.
    func testAFinishedRunWithoutItsCheckpointIsNotAdvisedAway() throws {
        let dir = root + "/done"
        let trained = try ArtifactCLI.run(["run", root + "/tiny.yaml", "--data-dir", root, "--out", dir, "--epochs", "1", "--quiet"])
        XCTAssertEqual(trained.status, 0, trained.error)
        try FileManager.default.removeItem(atPath: dir + "/checkpoint.safetensors")
        let resumed = try ArtifactCLI.run(["run", "--resume", dir, "--epochs", "2"])
        XCTAssertEqual(resumed.status, 2, resumed.error)
        XCTAssertTrue(resumed.error.contains("the run finished"), resumed.error)
        XCTAssertFalse(resumed.error.contains("--overwrite"), resumed.error)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/model.safetensors"))
    }

    /// What a run killed during its first epoch leaves: its record, its spec and its (empty) metrics, no
    /// checkpoint: made here from a finished run, less what the epochs and the end wrote.
    func testARunWithoutACheckpointSaysToStartAgain() throws {
        let dir = root + "/killed"
        let trained = try ArtifactCLI.run(["run", root + "/tiny.yaml", "--data-dir", root, "--out", dir, "--epochs", "1", "--quiet"])
        XCTAssertEqual(trained.status, 0, trained.error)
        for name in try FileManager.default.contentsOfDirectory(atPath: dir) where !["run.json", "spec.yaml", ".mlpc.lock"].contains(name) {
            try FileManager.default.removeItem(atPath: dir + "/" + name)
        }
        try "".write(toFile: dir + "/metrics.jsonl", atomically: true, encoding: .utf8)

        let resumed = try ArtifactCLI.run(["run", "--resume", dir])
        XCTAssertEqual(resumed.status, 2, resumed.error)
        XCTAssertTrue(resumed.error.contains("the run stopped before its first checkpoint"), resumed.error)
        XCTAssertTrue(resumed.error.contains("--out \(dir) --overwrite"), resumed.error)

        let again = try ArtifactCLI.run(["run", root + "/tiny.yaml", "--data-dir", root, "--out", dir, "--epochs", "1", "--quiet"])
        XCTAssertEqual(again.status, 2, again.error)
        XCTAssertTrue(again.error.contains("stopped before its first checkpoint"), again.error)
        XCTAssertFalse(again.error.contains("--resume"), again.error)
        let replaced = try ArtifactCLI.run(["run", root + "/tiny.yaml", "--data-dir", root, "--out", dir, "--epochs", "1", "--overwrite", "--quiet"])
        XCTAssertEqual(replaced.status, 0, replaced.error)
    }
}
