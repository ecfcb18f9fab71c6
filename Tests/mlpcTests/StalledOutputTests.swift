import Foundation
import XCTest

/// Ctrl-C while nothing reads mlpc's standard output (a full pipe: a stalled consumer, or mpirun while
/// it waits to signal its ranks): the line that cannot be written is dropped, and the run still ends
/// in a checkpoint with status 3 instead of waiting in write(2) for a reader that never comes.
final class StalledOutputTests: XCTestCase {
    func testAnInterruptWhileStandardOutputIsFullEndsInACheckpoint() throws {
        let root = try makeTemporaryDirectory(self, "mlpc-stalled-output")
        try ArtifactCLI.writeDataset(into: root, trainCount: 240)
        let spec = root + "/tiny.yaml"
        try ArtifactCLI.spec(epochs: 100_000).write(toFile: spec, atomically: true, encoding: .utf8)
        let dir = root + "/run"
        let (child, out, err) = try ArtifactCLI.process(["run", spec, "--data-dir", root, "--out", dir])
        try child.run()
        defer { if child.isRunning { kill(child.processIdentifier, SIGKILL) } }
        // Standard error is read (it holds only the spec's warnings); standard output is not, so after
        // some hundreds of epoch lines the pipe is full and the run cannot print its next line: the
        // epochs recorded in metrics.jsonl stop growing while the process lives.
        let errors = ArtifactCLI.readInBackground(err)
        var recorded = -1
        var unchangedSince = Date()
        let deadline = Date().addingTimeInterval(120)
        while child.isRunning && Date() < deadline {
            let now = epochsRecorded(dir)
            if now != recorded {
                recorded = now
                unchangedSince = Date()
            } else if recorded > 0 && Date().timeIntervalSince(unchangedSince) > 1 {
                break
            }
            usleep(50_000)
        }
        XCTAssertTrue(child.isRunning, "the run ended before its output filled the pipe")
        XCTAssertGreaterThan(recorded, 0)

        kill(child.processIdentifier, SIGINT)
        let signalled = Date()
        while child.isRunning && Date().timeIntervalSince(signalled) < 30 { usleep(20_000) }
        XCTAssertFalse(child.isRunning, "an interrupted run waited for a reader of its output")
        if child.isRunning { kill(child.processIdentifier, SIGKILL) }
        // Only now is standard output read (to its end, which the exit gave it).
        _ = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = String(decoding: errors(), as: UTF8.self)
        child.waitUntilExit()
        XCTAssertEqual(child.terminationStatus, 3, stderr)
        XCTAssertTrue(stderr.contains("checkpoint saved to \(dir)/checkpoint.safetensors"), stderr)
        let record = try String(contentsOfFile: dir + "/run.json", encoding: .utf8)
        XCTAssertTrue(record.contains("\"status\" : \"interrupted\""), record)
    }

    func epochsRecorded(_ directory: String) -> Int {
        guard let text = try? String(contentsOfFile: directory + "/metrics.jsonl", encoding: .utf8) else { return 0 }
        return text.split(separator: "\n").count
    }
}
