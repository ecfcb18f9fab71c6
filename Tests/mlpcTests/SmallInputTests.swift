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
        if let sanitizer = ProcessInfo.processInfo.environment["MLPC_TEST_SANITIZER"] {
            // The sanitizer runtimes read /proc/self themselves before mlpc runs; the plain pass runs this.
            throw XCTSkip("the \(sanitizer) sanitizer's runtime needs /proc")
        }
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

    /// `--resume` of a directory that is not there says so, not that its spec.yaml is missing.
    func testResumingAMissingDirectorySaysTheDirectoryDoesNotExist() throws {
        let missing = folder + "/no-such-run"
        let result = try MLPCProcess.run(["run", "--resume", missing])
        assertNoCrash(result)
        XCTAssertEqual(result.status, 2, result.stderr)
        XCTAssertTrue(result.stderr.contains("cannot resume \(missing): the directory does not exist"), result.stderr)
        XCTAssertFalse(result.stderr.contains("spec.yaml"), result.stderr)
    }

    /// SIGTERM while the data downloads ends mlpc with status 130, as Ctrl-C does (docs/reliability.md),
    /// both when the run directory is new (and removed again) and when it was there before (and stays).
    func testSIGTERMWhileTheDataLoadsExitsWith130() throws {
        let mirror = try MLPCProcess.silentMirror()
        defer { close(mirror.socket) }
        try writeFile(folder + "/tiny.yaml", TinyDataset.spec(epochs: 1))
        let existing = folder + "/existing"
        try FileManager.default.createDirectory(atPath: existing, withIntermediateDirectories: true)
        for (index, out) in [folder + "/runs/new", existing].enumerated() {
            let data = folder + "/data\(index)"
            let (child, stdout, stderr) = try ArtifactCLI.process(
                ["run", folder + "/tiny.yaml", "--data-dir", data, "--out", out, "--quiet"],
                environment: ["MLPC_MNIST_MIRRORS": mirror.url])
            try child.run()
            MLPCProcess.wait(for: child, upTo: 30, every: 1_000) { FileManager.default.fileExists(atPath: data) }
            usleep(200_000)
            XCTAssertTrue(child.isRunning, "the download did not wait")
            kill(child.processIdentifier, SIGTERM)
            let result = ArtifactCLI.finish(child, stdout, stderr)
            XCTAssertEqual(child.terminationReason, .exit, out)
            XCTAssertEqual(result.status, 130, "\(out): \(result.error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/runs"), "the interrupted run left its directory")
        XCTAssertTrue(FileManager.default.fileExists(atPath: existing))
    }

    /// A run of the tiny dataset trained for 1 epoch (its model removed): its checkpoint resumes with --epochs 2.
    func trainedRun() throws -> String {
        try TinyDataset.write(to: folder + "/data")
        try writeFile(folder + "/tiny.yaml", TinyDataset.spec(epochs: 1))
        let run = folder + "/run"
        let result = try MLPCProcess.run(["run", folder + "/tiny.yaml", "--data-dir", folder + "/data", "--out", run, "--quiet"], timeout: 120)
        assertNoCrash(result)
        XCTAssertEqual(result.status, 0, result.stderr)
        try FileManager.default.removeItem(atPath: run + "/model.safetensors")
        return run
    }

    /// A checkpoint path that is a directory or a FIFO is an unusable path: status 2, as eval gives for
    /// a model path of either kind.
    func testACheckpointThatIsNotARegularFileIsStatus2() throws {
        let run = try trainedRun()
        let checkpoint = run + "/checkpoint.safetensors"
        try FileManager.default.removeItem(atPath: checkpoint)
        try FileManager.default.createDirectory(atPath: checkpoint, withIntermediateDirectories: false)
        let directory = try MLPCProcess.run(["run", "--resume", run, "--epochs", "2"], timeout: 60)
        assertNoCrash(directory)
        XCTAssertEqual(directory.status, 2, directory.stderr)
        let eval = try MLPCProcess.run(["eval", checkpoint], timeout: 60)
        XCTAssertEqual(eval.status, 2, eval.stderr)

        try FileManager.default.removeItem(atPath: checkpoint)
        XCTAssertEqual(mkfifo(checkpoint, 0o600), 0)
        let fifo = try MLPCProcess.run(["run", "--resume", run, "--epochs", "2"], timeout: 60)
        assertNoCrash(fifo)
        XCTAssertEqual(fifo.status, 2, fifo.stderr)
    }

    /// A checkpoint whose metadata lacks a setting, or holds a malformed one, is refused naming that key.
    func testACheckpointMissingASettingNamesIt() throws {
        let run = try trainedRun()
        let checkpoint = run + "/checkpoint.safetensors"
        let original = try ModelFileCommandTests.TensorFile(path: checkpoint)
        for (key, value, expected) in [
            ("epochs", nil, "the checkpoint metadata lacks 'epochs'"),
            ("step_in_epoch", nil, "the checkpoint metadata lacks 'step_in_epoch'"),
            ("seed", "-1", "checkpoint metadata 'seed' is \"-1\", expected an unsigned integer"),
            ("batch_size", "0", "checkpoint metadata 'batch_size' is \"0\", expected a positive integer"),
        ] as [(String, String?, String)] {
            var file = original
            file.metadata[key] = value
            try file.write(to: checkpoint)
            let result = try MLPCProcess.run(["run", "--resume", run, "--epochs", "2"], timeout: 60)
            assertNoCrash(result)
            XCTAssertEqual(result.status, 1, result.stderr)
            XCTAssertTrue(result.stderr.contains(expected), "\(key): \(result.stderr)")
        }
    }

    /// A data-file problem in a directory given by --data-dir (or MLPC_DATA_DIR) names that source and
    /// points at no spec line: the spec's data.dir was not used. With the spec's own data.dir it points there.
    func testCheckSaysWhereTheDataDirectoryCameFrom() throws {
        let data = folder + "/data"
        try TinyDataset.write(to: data)
        try writeFile(data + "/" + TinyDataset.trainLabels, bytes: [0, 0, 8, 1, 0, 0, 0, 1, 0])
        let text = TinyDataset.spec(epochs: 1)
        let dirLine = try XCTUnwrap(TinyDataset.line(of: "dir: unused", in: text))
        let spec = folder + "/tiny.yaml"
        try writeFile(spec, text)
        for (arguments, environment, source) in [
            (["--data-dir", data], [:], "--data-dir"), ([], ["MLPC_DATA_DIR": data], "MLPC_DATA_DIR"),
        ] as [([String], [String: String], String)] {
            let result = try MLPCProcess.run(["check", spec] + arguments, environment: environment)
            assertNoCrash(result)
            XCTAssertEqual(result.status, 1, result.stderr)
            XCTAssertTrue(result.stderr.contains("(the data directory given by \(source))"), result.stderr)
            XCTAssertTrue(result.stderr.contains("mlpc: error:"), result.stderr)
            XCTAssertFalse(result.stderr.contains("\(spec):\(dirLine):"), result.stderr)
        }
        try writeFile(spec, text.replacingOccurrences(of: "dir: unused", with: "dir: data"))
        let own = try MLPCProcess.run(["check", spec])
        XCTAssertEqual(own.status, 1, own.stderr)
        XCTAssertTrue(own.stderr.contains("\(spec):\(dirLine):"), own.stderr)
        XCTAssertFalse(own.stderr.contains("given by"), own.stderr)
    }

    /// An MLPC_* variable mlpc cannot use is an error (status 2) before any work; a name it does not
    /// read is a warning that names the likely one; a well-formed setting says nothing.
    func testEnvironmentVariablesMlpcCannotUseAreReported() throws {
        let spec = MLPCProcess.repositoryRoot + "/specs/mnist_mlp.yaml"
        for mirrors in ["ftp://mirror.example/mnist/", "not a url", " , "] {
            let result = try MLPCProcess.run(["check", spec], environment: ["MLPC_MNIST_MIRRORS": mirrors])
            assertNoCrash(result)
            XCTAssertEqual(result.status, 2, "\(mirrors): \(result.stderr)")
            XCTAssertTrue(result.stderr.hasPrefix("mlpc: error: MLPC_MNIST_MIRRORS="), result.stderr)
        }
        let typo = try MLPCProcess.run(["check", spec], environment: ["MLPC_KERNEL": "portable", "MLPC_SPARSE_INPUT": "off"])
        XCTAssertEqual(typo.status, 0, typo.stderr)
        XCTAssertTrue(typo.stderr.contains("mlpc: warning: MLPC_KERNEL is not an environment variable mlpc reads; did you mean MLPC_KERNELS?"), typo.stderr)
        XCTAssertTrue(typo.stderr.contains("mlpc: warning: MLPC_SPARSE_INPUT is not read by mlpc; use --disable-pass sparse-input"), typo.stderr)
        let fine = try MLPCProcess.run(["check", spec], environment: ["MLPC_MNIST_MIRRORS": "http://127.0.0.1:1/a/, https://example.org/b"])
        XCTAssertEqual(fine.status, 0, fine.stderr)
        XCTAssertFalse(fine.stderr.contains("MLPC_"), fine.stderr)
    }
}
