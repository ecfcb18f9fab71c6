import Foundation
import XCTest

/// Data files that are not regular files, and data that moved between the sessions of a run.
final class DataPathTests: XCTestCase {
    var folder = ""
    var data: String { folder + "/data" }
    var specPath: String { folder + "/tiny.yaml" }

    override func setUpWithError() throws {
        folder = try makeTemporaryDirectory(self, "mlpc-data-paths")
        try TinyDataset.write(to: data)
        try writeFile(specPath, TinyDataset.spec(epochs: 2))
    }

    /// A FIFO would block a reader until some writer opens it: it is refused at once.
    func testAFIFOInPlaceOfADataFileIsRefusedWithoutWaiting() throws {
        let path = data + "/" + TinyDataset.trainImages
        try FileManager.default.removeItem(atPath: path)
        XCTAssertEqual(mkfifo(path, 0o644), 0)
        for arguments in [["check", specPath, "--data-dir", data], ["run", specPath, "--data-dir", data, "--out", folder + "/run"]] {
            let result = try MLPCProcess.run(arguments, timeout: 30)
            assertNoCrash(result)
            XCTAssertEqual(result.status, 1, "\(arguments[0]): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains("\(path): not a regular file"), result.stderr)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/run"))
    }

    /// A directory or a dangling link at a data file's name is that file, unusable, not a missing one
    /// to download.
    func testADirectoryOrADanglingLinkInPlaceOfADataFileIsNamed() throws {
        let labels = data + "/" + TinyDataset.trainLabels
        try FileManager.default.removeItem(atPath: labels)
        try FileManager.default.createDirectory(atPath: labels, withIntermediateDirectories: false)
        var result = try MLPCProcess.run(["check", specPath, "--data-dir", data])
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("\(labels): a directory"), result.stderr)

        try FileManager.default.removeItem(atPath: labels)
        try FileManager.default.createSymbolicLink(atPath: labels, withDestinationPath: folder + "/nowhere")
        result = try MLPCProcess.run(["run", specPath, "--data-dir", data, "--out", folder + "/run"])
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("\(labels): a symbolic link to a file that does not exist"), result.stderr)
        XCTAssertFalse(result.stderr.contains("download"), result.stderr)
    }

    /// A run started with a relative --data-dir records the directory absolute, so eval and --resume
    /// from another folder find the same data (not whatever a folder of that name holds there).
    func testTheRecordedDataDirectoryIsAbsolute() throws {
        let trained = try MLPCProcess.run(["run", specPath, "--data-dir", "data", "--out", "run", "--epochs", "1", "--quiet"], in: folder)
        XCTAssertEqual(trained.status, 0, trained.stderr)
        let record = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/run/run.json"))) as? [String: Any]
        XCTAssertEqual(record?["data_directory"] as? String, URL(fileURLWithPath: data).standardizedFileURL.path)

        let elsewhere = folder + "/elsewhere"
        try FileManager.default.createDirectory(atPath: elsewhere, withIntermediateDirectories: true)
        let evaluated = try MLPCProcess.run(["eval", folder + "/run"], in: elsewhere)
        XCTAssertEqual(evaluated.status, 0, evaluated.stderr)
        XCTAssertTrue(evaluated.stdout.contains("on \(TinyDataset.testCount) test images"), evaluated.stdout)
        let resumed = try MLPCProcess.run(["run", "--resume", folder + "/run", "--epochs", "2", "--quiet"], in: elsewhere)
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
    }

    /// A data directory that is a file is said to be one, not treated as a place to download into.
    func testADataDirectoryThatIsAFileIsRefused() throws {
        let file = folder + "/notadir"
        try writeFile(file, "x")
        let result = try MLPCProcess.run(["run", specPath, "--data-dir", file, "--out", folder + "/run"])
        assertNoCrash(result)
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("\(file): the data directory is a file, not a directory"), result.stderr)
        XCTAssertFalse(result.stderr.contains("download"), result.stderr)
    }

    /// The data moved after the first epoch: --data-dir says where it is now, the checksums say it is the
    /// same data, and the run ends with the weights of a run that never moved.
    func testResumeWithDataDirFindsDataThatMoved() throws {
        let reference = try MLPCProcess.run(["run", specPath, "--data-dir", data, "--out", folder + "/reference", "--quiet"])
        XCTAssertEqual(reference.status, 0, reference.stderr)

        let run = folder + "/run"
        let first = try MLPCProcess.run(["run", specPath, "--data-dir", data, "--out", run, "--epochs", "1", "--quiet"])
        XCTAssertEqual(first.status, 0, first.stderr)
        let moved = folder + "/moved"
        try FileManager.default.moveItem(atPath: data, toPath: moved)

        let lost = try MLPCProcess.run(
            ["run", "--resume", run, "--epochs", "2"], environment: ["MLPC_MNIST_MIRRORS": "http://127.0.0.1:1/"])
        XCTAssertNotEqual(lost.status, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: data), "the failed download left the old data directory")
        let resumed = try MLPCProcess.run(["run", "--resume", run, "--epochs", "2", "--data-dir", moved, "--quiet"])
        assertNoCrash(resumed)
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertEqual(
            try Data(contentsOf: URL(fileURLWithPath: run + "/weights.safetensors")),
            try Data(contentsOf: URL(fileURLWithPath: folder + "/reference/weights.safetensors")))
        // The run now records where the data is: a later resume needs no --data-dir.
        let again = try MLPCProcess.run(["run", "--resume", run, "--epochs", "3", "--quiet"])
        XCTAssertEqual(again.status, 0, again.stderr)

        // Other data under the same names is refused by its checksums.
        try TinyDataset.write(to: folder + "/other", train: 60)
        let other = try MLPCProcess.run(["run", "--resume", run, "--epochs", "4", "--data-dir", folder + "/other"])
        XCTAssertEqual(other.status, 1, other.stderr)
        XCTAssertTrue(other.stderr.contains("it was trained on data with other checksums"), other.stderr)
    }
}
