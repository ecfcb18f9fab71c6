import Foundation
import XCTest

/// The smaller promises about inputs: each a command-line behaviour with its exact words or status.
final class SmallInputTests: XCTestCase {
    var folder = ""

    override func setUpWithError() throws {
        folder = try makeTemporaryDirectory(self, "mlpc-small-inputs")
    }

    /// Without /proc (a container or chroot that does not mount it) the arguments still arrive:
    /// `mlpc --version` and `mlpc check` work, in a mount namespace where /proc is unmounted.
    func testCommandsRunWithoutProc() throws {
        let binary = try MLPCProcess.binaryPath()
        let spec = MLPCProcess.repositoryRoot + "/specs/mnist_mlp.yaml"
        let script = """
            umount -l /proc 2>/dev/null || exit 77
            [ -e /proc/self ] && exit 77
            "$0" --version || exit $?
            exec "$0" plan "$1" --threads 1
            """
        // 77: /proc could not be unmounted; "unshare:": no mount namespace for this user.
        func unavailable(_ result: CommandResult) -> Bool { result.status == 77 || result.stderr.hasPrefix("unshare:") }
        var result = try MLPCProcess.run(["-m", "/bin/sh", "-c", script, binary, spec], timeout: 60, executable: "/usr/bin/unshare")
        if unavailable(result) {
            result = try MLPCProcess.run(["-rm", "/bin/sh", "-c", script, binary, spec], timeout: 60, executable: "/usr/bin/unshare")
        }
        if unavailable(result) { throw XCTSkip("no mount namespace without /proc here: \(result.stderr)") }
        XCTAssertNotEqual(result.status, 132, "mlpc died of SIGILL: \(result.stderr)")
        assertNoCrash(result)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.hasPrefix("0."), result.stdout)
        XCTAssertTrue(result.stdout.contains("plan for mnist_mlp"), result.stdout)
    }

    /// A newline in a data directory's name is printed escaped (`a\nb`), in `check`'s diagnostics and in
    /// `run`'s errors: no line of the output starts with the part after it.
    func testNewlinesInPathsAreEscapedInMessages() throws {
        let data = folder + "/data\ninjected"
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        try TinyDataset.write(to: data)
        try FileManager.default.removeItem(atPath: data + "/" + TinyDataset.testLabels)
        try writeFile(data + "/" + TinyDataset.trainLabels, bytes: [0, 0, 8, 1, 0, 0, 0, 1, 0])
        let spec = folder + "/tiny.yaml"
        try writeFile(spec, TinyDataset.spec(epochs: 1))
        let check = try MLPCProcess.run(["check", spec, "--data-dir", data])
        let run = try MLPCProcess.run(["run", spec, "--data-dir", data, "--out", folder + "/run", "--quiet"])
        for result in [check, run] {
            assertNoCrash(result)
            XCTAssertEqual(result.status, 1, result.stderr)
            XCTAssertTrue(result.stderr.contains("data\\ninjected"), result.stderr)
            XCTAssertFalse(result.stderrLines.contains { $0.hasPrefix("injected") }, result.stderr)
        }
    }
}
