import Foundation
import XCTest

/// `mpirun -np N mlpc run`: the ranks train one model (the same bits for a fixed N, whatever the
/// threads), agree at start-up or all say why not, end together when one dies or is interrupted, and
/// resume with the same N. The tests start Open MPI's mpirun (scripts/setup installs it) and skip
/// only when it is not installed.
final class DataParallelTests: XCTestCase {
    /// mpirun's flags for this machine: root may run it (CI containers), and more ranks than cores.
    static let launcherFlags = ["--allow-run-as-root", "--oversubscribe"]

    func mpirun() throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/mpirun"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw XCTSkip("mpirun is not installed (scripts/setup installs Open MPI's openmpi-bin): the data-parallel tests need it")
    }

    /// A tiny dataset whose last batch of 16 has 2 rows, so that with 3 ranks one rank's share is empty.
    func tinyRun(train: Int = 114) throws -> (spec: String, data: String, root: String) {
        let root = try makeTemporaryDirectory(self, "mlpc-ranks")
        try TinyDataset.write(to: root + "/data", train: train)
        try writeFile(root + "/tiny.yaml", TinyDataset.spec())
        return (root + "/tiny.yaml", root + "/data", root)
    }

    func launch(_ ranks: Int, _ arguments: [String], timeout: Double = 120) throws -> CommandResult {
        let binary = try MLPCProcess.binaryPath()
        return try MLPCProcess.run(
            Self.launcherFlags + ["-np", String(ranks), binary] + arguments, timeout: timeout, executable: try mpirun())
    }

    func weights(_ directory: String) -> Data? { FileManager.default.contents(atPath: directory + "/weights.safetensors") }

    func testAFixedNumberOfRanksGivesTheSameWeightsEveryTimeAndOnAnyThreadCount() throws {
        let tiny = try tinyRun()
        for ranks in [2, 3] {
            var runs: [Data] = []
            for (index, threads) in ["1", "2", "1"].enumerated() {
                let out = tiny.root + "/n\(ranks)-\(index)"
                let result = try launch(ranks, ["run", tiny.spec, "--data-dir", tiny.data, "--out", out, "--threads", threads, "--quiet"])
                assertNoCrash(result)
                XCTAssertEqual(result.status, 0, result.stderr)
                XCTAssertEqual(result.stdout.components(separatedBy: "Accuracy:").count - 1, 1, "only the first rank prints: \(result.stdout)")
                let record = try XCTUnwrap(FileManager.default.contents(atPath: out + "/run.json"))
                let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: record) as? [String: Any])
                XCTAssertEqual(json["ranks"] as? Int, ranks)
                XCTAssertEqual(json["batch_size"] as? Int, 16)
                runs.append(try XCTUnwrap(weights(out)))
            }
            XCTAssertEqual(runs[0], runs[1], "\(ranks) ranks: 1 and 2 threads per rank differ")
            XCTAssertEqual(runs[0], runs[2], "\(ranks) ranks: two runs differ")
        }
        // One rank is a plain process: the same bits as mlpc without mpirun.
        let single = try MLPCProcess.run(["run", tiny.spec, "--data-dir", tiny.data, "--out", tiny.root + "/plain", "--quiet"])
        XCTAssertEqual(single.status, 0, single.stderr)
        let one = try launch(1, ["run", tiny.spec, "--data-dir", tiny.data, "--out", tiny.root + "/n1", "--quiet"])
        XCTAssertEqual(one.status, 0, one.stderr)
        XCTAssertEqual(weights(tiny.root + "/plain"), weights(tiny.root + "/n1"))
    }

    func testABatchNormModelIsRefusedOnEveryRankBeforeAnyFileIsWritten() throws {
        let tiny = try tinyRun()
        // Each rank would keep running statistics of its own share: refused, not trained wrongly.
        let spec = TinyDataset.spec().replacingOccurrences(
            of: "    - linear: {out: 16, activation: relu}", with: "    - linear: {out: 16, activation: relu}\n    - batch_norm")
        XCTAssertNotEqual(spec, TinyDataset.spec(), "the fixture's layers changed: the batch_norm was not inserted")
        try writeFile(tiny.root + "/bn.yaml", spec)
        let out = tiny.root + "/bn-run"
        let result = try launch(2, ["run", tiny.root + "/bn.yaml", "--data-dir", tiny.data, "--out", out, "--quiet"])
        assertNoCrash(result)
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("a model with batch norm (running statistics) cannot be trained over 2 ranks"), result.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "a refused run left its directory")
    }

    func testTwoRanksReachTheAccuracyOfOneProcess() throws {
        _ = try mpirun()
        guard let mnist = ProcessInfo.processInfo.environment["MLPC_TEST_MNIST_DIR"] else {
            throw XCTSkip("needs MNIST (MLPC_TEST_MNIST_DIR, which scripts/test sets)")
        }
        let root = try makeTemporaryDirectory(self, "mlpc-ranks")
        let spec = MLPCProcess.repositoryRoot + "/specs/mnist_mlp.yaml"
        // Two epochs: the second stores fc1's live features first, in an order the ranks agree on.
        let arguments = ["run", spec, "--data-dir", mnist, "--epochs", "2", "--threads", "1", "--quiet"]
        let single = try MLPCProcess.run(arguments + ["--out", root + "/one"], timeout: 300)
        XCTAssertEqual(single.status, 0, single.stderr)
        let parallel = try launch(2, arguments + ["--out", root + "/two"], timeout: 300)
        XCTAssertEqual(parallel.status, 0, parallel.stderr)
        let inModelOrder = try launch(
            2, arguments + ["--out", root + "/two-model-order", "--disable-pass", "live-first-features"], timeout: 300)
        XCTAssertEqual(inModelOrder.status, 0, inModelOrder.stderr)
        XCTAssertEqual(weights(root + "/two"), weights(root + "/two-model-order"), "live-first-features changed the bits of 2 ranks")
        func accuracy(_ directory: String) throws -> Double {
            let json = try JSONSerialization.jsonObject(with: try XCTUnwrap(FileManager.default.contents(atPath: directory + "/run.json")))
            return try XCTUnwrap((json as? [String: Any])?["test_accuracy"] as? Double)
        }
        let one = try accuracy(root + "/one"), two = try accuracy(root + "/two")
        // The same model up to rounding: within the 95% interval of 10,000 test images (about ±0.5 points).
        XCTAssertLessThan(abs(one - two), 0.6, "one process \(one)%, two ranks \(two)%")
        XCTAssertNotEqual(weights(root + "/one"), weights(root + "/two"), "two ranks sum in another order: the bits differ")
    }

    func testRanksThatDisagreeAllSaySoAndEnd() throws {
        let tiny = try tinyRun()
        let binary = try MLPCProcess.binaryPath()
        let common = ["run", tiny.spec, "--data-dir", tiny.data, "--out", tiny.root + "/out"]
        // Open MPI's MPMD form: rank 0 with one seed, rank 1 with another.
        let result = try MLPCProcess.run(
            Self.launcherFlags + ["-np", "1", binary] + common + ["--seed", "1", ":", "-np", "1", binary] + common + ["--seed", "2"],
            timeout: 60, executable: try mpirun())
        XCTAssertFalse(result.timedOut, "the job hung")
        XCTAssertNotEqual(result.status, 0)
        for rank in 0..<2 {
            XCTAssertTrue(result.stderr.contains("rank \(rank) of 2: the ranks of this mpirun job disagree"), result.stderr)
        }
        XCTAssertTrue(result.stderr.contains("seed: rank 0 has 1, rank 1 has 2"), result.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: tiny.root + "/out/weights.safetensors"))
    }

    func testAKilledRankEndsTheJobNamingIt() throws {
        let tiny = try tinyRun()
        let binary = try MLPCProcess.binaryPath()
        let out = tiny.root + "/out"
        let job = try BackgroundJob(
            executable: try mpirun(),
            arguments: Self.launcherFlags + ["-np", "3", binary, "run", tiny.spec, "--data-dir", tiny.data, "--out", out, "--epochs", "100000"])
        defer { job.stop() }
        MLPCProcess.wait(for: job.process, upTo: 60, every: 20_000) { MLPCProcess.firstEpochRecorded(in: out) }
        let victim = try XCTUnwrap(rankProcess(1, binary: binary), "rank 1 not found")
        XCTAssertEqual(kill(victim, SIGKILL), 0)
        let killed = Date()
        let ended = job.wait(seconds: 30)
        XCTAssertTrue(ended, "the job went on after rank 1 was killed")
        XCTAssertLessThan(Date().timeIntervalSince(killed), 15)
        XCTAssertNotEqual(job.process.terminationStatus, 0)
        XCTAssertTrue(job.stderr().contains("rank 1"), job.stderr())
        let deadline = Date().addingTimeInterval(10)
        while rankProcess(0, binary: binary) != nil && Date() < deadline { usleep(50_000) }
        XCTAssertNil(rankProcess(0, binary: binary), "rank 0 outlived the job")
    }

    func testAnInterruptedJobCheckpointsAndResumesOnlyWithTheSameRanks() throws {
        // Ten times the rows, so that the run is still going when the signal comes.
        let tiny = try tinyRun(train: 1140)
        let binary = try MLPCProcess.binaryPath()
        let arguments = ["run", tiny.spec, "--data-dir", tiny.data, "--epochs", "40"]
        let whole = try launch(2, arguments + ["--out", tiny.root + "/whole", "--quiet"])
        XCTAssertEqual(whole.status, 0, whole.stderr)

        let out = tiny.root + "/interrupted"
        let job = try BackgroundJob(executable: try mpirun(), arguments: Self.launcherFlags + ["-np", "2", binary] + arguments + ["--out", out])
        defer { job.stop() }
        MLPCProcess.wait(for: job.process, upTo: 60, every: 5_000) { MLPCProcess.firstEpochRecorded(in: out) }
        // Ctrl-C reaches mpirun, which passes it on to the ranks as SIGTERM, after a second or so. Here
        // only rank 1 gets it, at once: the ranks must still agree to stop after the same step, and
        // rank 0 writes the checkpoint.
        XCTAssertTrue(job.process.isRunning, "the run ended before it could be interrupted")
        let second = try XCTUnwrap(rankProcess(1, binary: binary), "rank 1 not found")
        XCTAssertEqual(kill(second, SIGTERM), 0)
        XCTAssertTrue(job.wait(seconds: 30), "the interrupted job did not end")
        XCTAssertTrue(job.stderr().contains("checkpoint saved to"), job.stderr())
        XCTAssertTrue(job.stderr().contains("mpirun -np 2 mlpc run --resume"), job.stderr())
        let record = try String(contentsOfFile: out + "/run.json", encoding: .utf8)
        XCTAssertTrue(record.contains("\"interrupted\""), record)

        let otherCount = try launch(3, ["run", "--resume", out])
        XCTAssertEqual(otherCount.status, 2, otherCount.stderr)
        XCTAssertTrue(otherCount.stderr.contains("it was trained on 2 ranks"), otherCount.stderr)
        XCTAssertTrue(otherCount.stderr.contains("mpirun -np 2 mlpc run --resume"), otherCount.stderr)
        let alone = try MLPCProcess.run(["run", "--resume", out])
        XCTAssertEqual(alone.status, 2, alone.stderr)
        XCTAssertTrue(alone.stderr.contains("on one process: it was trained on 2 ranks"), alone.stderr)

        let resumed = try launch(2, ["run", "--resume", out, "--quiet"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertEqual(weights(out), weights(tiny.root + "/whole"), "the resumed run differs from the uninterrupted one")
    }

    func testAnUnusableRankCountIsAClearError() throws {
        let tiny = try tinyRun()
        let result = try MLPCProcess.run(
            ["run", tiny.spec, "--data-dir", tiny.data, "--out", tiny.root + "/out"], environment: ["OMPI_COMM_WORLD_SIZE": "two"])
        assertNoCrash(result)
        XCTAssertEqual(result.status, 2)
        XCTAssertTrue(result.stderr.contains("OMPI_COMM_WORLD_SIZE is \"two\""), result.stderr)
    }

    /// The process of rank `rank` of a running job of `binary` (found by the rank Open MPI puts in its environment).
    func rankProcess(_ rank: Int, binary: String) -> pid_t? {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return nil }
        for entry in entries {
            guard let pid = pid_t(entry),
                let environ = FileManager.default.contents(atPath: "/proc/\(entry)/environ"),
                let command = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline"),
                String(decoding: command, as: UTF8.self).hasPrefix(binary + "\0")
            else { continue }
            let variables = environ.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            if variables.contains("OMPI_COMM_WORLD_RANK=\(rank)") { return pid }
        }
        return nil
    }
}

/// A process left running while the test acts on it, its stderr in a file.
final class BackgroundJob {
    let process = Process()
    let stderrPath: String
    let finished = DispatchSemaphore(value: 0)

    init(executable: String, arguments: [String]) throws {
        stderrPath = NSTemporaryDirectory() + "mlpc-job-\(UUID().uuidString)"
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["MLPC_DATA_DIR"] = nil
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle(forWritingAtPath: stderrPath)
        process.terminationHandler = { [finished] _ in finished.signal() }
        try process.run()
    }

    /// Whether the process ended within `seconds`.
    func wait(seconds: Double) -> Bool { finished.wait(timeout: .now() + seconds) == .success }

    func stderr() -> String { String(decoding: FileManager.default.contents(atPath: stderrPath) ?? Data(), as: UTF8.self) }

    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            _ = wait(seconds: 10)
        }
        try? FileManager.default.removeItem(atPath: stderrPath)
    }
}
