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
}
