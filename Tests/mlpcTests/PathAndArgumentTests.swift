import Foundation
import XCTest

/// Exit status 2: paths that cannot be read as a spec, and arguments mlpc cannot use. Each gets one
/// clear line on stderr and no crash report.
final class PathAndArgumentTests: XCTestCase {
    func assertUsageFailure(_ result: CommandResult, mentions text: String, file: StaticString = #filePath, line: UInt = #line) {
        assertNoCrash(result, file: file, line: line)
        XCTAssertEqual(result.status, 2, "stderr: \(result.stderr)", file: file, line: line)
        XCTAssertTrue(result.stderr.contains(text), "stderr does not mention \(text): \(result.stderr)", file: file, line: line)
        XCTAssertTrue(result.stdout.isEmpty, "stdout: \(result.stdout)", file: file, line: line)
    }

    func testMissingSpecFileExitsTwoNamingThePath() throws {
        let path = try makeTemporaryDirectory(self) + "/absent.yaml"
        let result = try MLPCProcess.run(["check", path])
        assertUsageFailure(result, mentions: "cannot open '\(path)': No such file or directory")
    }

    func testDirectoryAsSpecExitsTwo() throws {
        let directory = try makeTemporaryDirectory(self)
        let result = try MLPCProcess.run(["check", directory])
        assertUsageFailure(result, mentions: "'\(directory)' is a directory, not a spec file")
    }

    func testPathThroughARegularFileExitsTwo() throws {
        let file = try makeTemporaryDirectory(self) + "/plain"
        try writeFile(file, "name: x\n")
        let result = try MLPCProcess.run(["plan", file + "/spec.yaml"])
        assertUsageFailure(result, mentions: "Not a directory")
    }

    func testFIFOAsSpecExitsTwoWithoutWaitingForAWriter() throws {
        let fifo = try makeTemporaryDirectory(self) + "/pipe.yaml"
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let result = try MLPCProcess.run(["check", fifo], timeout: 10)
        assertUsageFailure(result, mentions: "is not a regular file")
    }

    func testPermissionDeniedExitsTwo() throws {
        let path = try makeTemporaryDirectory(self) + "/locked.yaml"
        try writeFile(path, TinyDataset.spec())
        XCTAssertEqual(chmod(path, 0), 0)
        // The superuser reads any file; the other path checks above cover that case.
        try XCTSkipIf(access(path, R_OK) == 0, "running as a user that can read a mode-000 file")
        let result = try MLPCProcess.run(["check", path])
        assertUsageFailure(result, mentions: "Permission denied")
    }

    func testSpecOverOneMebibyteExitsTwo() throws {
        let path = try makeTemporaryDirectory(self) + "/huge.yaml"
        try writeFile(path, "# " + String(repeating: "x", count: 5 << 20) + "\n")
        let result = try MLPCProcess.run(["check", path])
        assertUsageFailure(result, mentions: "is too large for a spec")
    }

    func testUnknownFlagExitsTwo() throws {
        let result = try MLPCProcess.run(["check", "specs/mnist_mlp.yaml", "--bogus"])
        assertUsageFailure(result, mentions: "Unknown option '--bogus'")
    }

    func testMissingSpecArgumentExitsTwo() throws {
        let result = try MLPCProcess.run(["plan"])
        assertUsageFailure(result, mentions: "Missing expected argument '<spec>'")
    }

    func testUnknownSubcommandExitsTwo() throws {
        let result = try MLPCProcess.run(["train", "specs/mnist_mlp.yaml"])
        assertNoCrash(result)
        XCTAssertEqual(result.status, 2, result.stderr)
        XCTAssertFalse(result.stderr.isEmpty)
    }

    func testUnknownFormatExitsTwo() throws {
        let result = try MLPCProcess.run(["plan", "specs/mnist_mlp.yaml", "--format", "xml"])
        assertUsageFailure(result, mentions: "xml")
    }

    func testCheckRefusesDotFormat() throws {
        let result = try MLPCProcess.run(["check", "specs/mnist_mlp.yaml", "--format", "dot"])
        assertUsageFailure(result, mentions: "mlpc plan --format dot")
    }

    func testNonNumericThreadsExitsTwo() throws {
        let result = try MLPCProcess.run(["plan", "specs/mnist_mlp.yaml", "--threads", "many"])
        assertUsageFailure(result, mentions: "many")
    }

    func testZeroEpochsExitsTwo() throws {
        let result = try MLPCProcess.run(["run", "specs/mnist_mlp.yaml", "--epochs", "0"])
        assertUsageFailure(result, mentions: "--epochs must be between 1 and 1048576")
    }

    func testHugeBatchSizeExitsTwo() throws {
        let result = try MLPCProcess.run(["run", "specs/mnist_mlp.yaml", "--batch-size", "99999999999"])
        assertUsageFailure(result, mentions: "--batch-size must be between 1 and 1048576")
    }

    func testVersionPrintsTheVersionAndExitsZero() throws {
        let result = try MLPCProcess.run(["--version"])
        assertNoCrash(result)
        XCTAssertEqual(result.status, 0)
        XCTAssertTrue(result.stdout.range(of: #"^\d+\.\d+\.\d+\n$"#, options: .regularExpression) != nil, result.stdout)
    }

    func testHelpListsTheSubcommandsAndExitsZero() throws {
        let result = try MLPCProcess.run(["--help"])
        assertNoCrash(result)
        XCTAssertEqual(result.status, 0)
        for command in ["check", "plan", "run"] { XCTAssertTrue(result.stdout.contains(command), result.stdout) }
    }
}
