import Files
import Foundation
import TestSupport
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

    /// The tiny spec with a batch norm after the hidden layer.
    func batchNormSpec() throws -> String {
        let spec = TinyDataset.spec().replacingOccurrences(
            of: "    - linear: {out: 16, activation: relu}", with: "    - linear: {out: 16, activation: relu}\n    - batch_norm")
        XCTAssertNotEqual(spec, TinyDataset.spec(), "the fixture's layers changed: the batch_norm was not inserted")
        return spec
    }

    func testABatchNormModelTrainsOverRanksAsOneModel() throws {
        // 285 test images; the last batch of 16 has 4 rows, one per rank.
        let tiny = try tinyRun(train: 1140)
        try writeFile(tiny.root + "/bn.yaml", try batchNormSpec())
        let arguments = ["run", tiny.root + "/bn.yaml", "--data-dir", tiny.data, "--quiet"]
        var runs: [Data] = []
        for (index, threads) in ["1", "2"].enumerated() {
            let out = tiny.root + "/two-\(index)"
            let result = try launch(2, arguments + ["--out", out, "--threads", threads])
            assertNoCrash(result)
            XCTAssertEqual(result.status, 0, result.stderr)
            runs.append(try XCTUnwrap(weights(out)))
        }
        XCTAssertEqual(runs[0], runs[1], "2 ranks: 1 and 2 threads per rank differ")
        let single = try MLPCProcess.run(arguments + ["--out", tiny.root + "/one"])
        XCTAssertEqual(single.status, 0, single.stderr)
        XCTAssertNotEqual(weights(tiny.root + "/one"), runs[0], "two ranks normalize by their own shares: the bits differ")
        let one = try testAccuracy(tiny.root + "/one"), two = try testAccuracy(tiny.root + "/two-0")
        // 285 images: one image is 0.35 points.
        XCTAssertLessThan(abs(one - two), 3, "one process \(one)%, two ranks \(two)%")
        XCTAssertGreaterThan(two, 90)
        // What the ranks evaluated together is the model rank 0 wrote.
        let evaluated = try MLPCProcess.run(["eval", tiny.root + "/two-0", "--data-dir", tiny.data])
        XCTAssertEqual(evaluated.status, 0, evaluated.stderr)
        XCTAssertTrue(evaluated.stdout.contains(String(format: "Accuracy: %.2f%%", two)), "run \(two)%: \(evaluated.stdout)")
        // The running statistics written are the ranks' mean, not their initial values (mean 0, var 1).
        let state = try runningStatistics(tiny.root + "/two-0")
        XCTAssertEqual(state.mean.count, 16)
        XCTAssertTrue(state.mean.contains { $0 != 0 } && state.variance.contains { $0 != 1 }, "\(state)")
    }

    func testAnInterruptedBatchNormJobResumesToTheSameWeights() throws {
        let tiny = try tinyRun(train: 1140)
        try writeFile(tiny.root + "/bn.yaml", try batchNormSpec())
        try interruptAndResume(spec: tiny.root + "/bn.yaml", data: tiny.data, root: tiny.root)
    }

    /// A regressor over two ranks: each rank predicts its share of the test rows, and the metrics are
    /// those of all the rows; the same bits for a fixed N, close to one process.
    func testARegressorTrainsOverRanksWithItsMetrics() throws {
        let root = try makeTemporaryDirectory(self, "mlpc-ranks")
        var lines = ["x1,x2,y"]
        var random = SplitMix64(state: 9)
        for _ in 0..<403 {
            let x1 = Double(random.next() % 2000) / 100 - 10, x2 = Double(random.next() % 2000) / 100 - 10
            lines.append("\(x1),\(x2),\(3 * x1 - 2 * x2 + 5)")
        }
        try writeFile(root + "/train.csv", lines.joined(separator: "\n") + "\n")
        for loss in ["mse", "huber"] {
            try writeFile(
                root + "/\(loss).yaml",
                """
                name: reg
                data:
                  format: csv
                  train: train.csv
                  test_fraction: 0.25
                  validation_fraction: 0.1
                  target: {column: y, type: number}
                model:
                  layers:
                    - linear: {out: 16, activation: tanh}
                    - linear: {out: 1}
                loss: \(loss)
                optimizer: {kind: adam, lr: 0.01}
                training: {batch_size: 16, epochs: 30, threads: 1}

                """)
            let arguments = ["run", root + "/\(loss).yaml", "--quiet"]
            var runs: [Data] = []
            for index in 0..<2 {
                let out = root + "/\(loss)-two-\(index)"
                let result = try launch(2, arguments + ["--out", out])
                assertNoCrash(result)
                XCTAssertEqual(result.status, 0, result.stderr)
                XCTAssertEqual(result.stdout.components(separatedBy: "Test MAE").count - 1, 1, "only the first rank prints: \(result.stdout)")
                runs.append(try XCTUnwrap(weights(out)))
            }
            XCTAssertEqual(runs[0], runs[1], "\(loss): two runs on 2 ranks differ")
            let single = try MLPCProcess.run(arguments + ["--out", root + "/\(loss)-one"])
            XCTAssertEqual(single.status, 0, single.stderr)
            let one = try record(root + "/\(loss)-one"), two = try record(root + "/\(loss)-two-0")
            let r2One = try XCTUnwrap(one["test_r2"] as? Double), r2Two = try XCTUnwrap(two["test_r2"] as? Double)
            let maeOne = try XCTUnwrap(one["test_mae"] as? Double), maeTwo = try XCTUnwrap(two["test_mae"] as? Double)
            XCTAssertGreaterThan(r2Two, 0.99, "\(loss)")
            XCTAssertLessThan(abs(r2One - r2Two), 0.005, "\(loss): R² one process \(r2One), two ranks \(r2Two)")
            XCTAssertLessThan(abs(maeOne - maeTwo), 0.25 * maeOne, "\(loss): MAE one process \(maeOne), two ranks \(maeTwo)")
            XCTAssertEqual((two["epoch_test_r2"] as? [Double])?.count, 30)
            let metrics = try String(contentsOfFile: root + "/\(loss)-two-0/metrics.jsonl", encoding: .utf8)
            XCTAssertTrue(metrics.contains("\"validation_r2\""), metrics)
            XCTAssertTrue(metrics.contains("\"allreduce_seconds_per_step\""), metrics)
            XCTAssertTrue(FileManager.default.fileExists(atPath: root + "/\(loss)-two-0/regression.png"))
        }
    }

    func record(_ directory: String) throws -> [String: Any] {
        let json = try JSONSerialization.jsonObject(with: try XCTUnwrap(FileManager.default.contents(atPath: directory + "/run.json")))
        return try XCTUnwrap(json as? [String: Any])
    }

    func testAccuracy(_ directory: String) throws -> Double { try XCTUnwrap(try record(directory)["test_accuracy"] as? Double) }

    /// The batch norm's running mean and variance in a run's weights.
    func runningStatistics(_ directory: String) throws -> (mean: [Float], variance: [Float]) {
        let file = try SafetensorsFile.read(path: directory + "/weights.safetensors")
        let names = file.tensors.map(\.name)
        let mean = try XCTUnwrap(file.tensors.first { $0.name.hasSuffix("running_mean") }?.values, "\(names)")
        let variance = try XCTUnwrap(file.tensors.first { $0.name.hasSuffix("running_var") }?.values, "\(names)")
        return (mean, variance)
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
        let one = try testAccuracy(root + "/one"), two = try testAccuracy(root + "/two")
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
        let out = try interruptAndResume(spec: tiny.spec, data: tiny.data, root: tiny.root)
        let otherCount = try launch(3, ["run", "--resume", out])
        XCTAssertEqual(otherCount.status, 2, otherCount.stderr)
        XCTAssertTrue(otherCount.stderr.contains("it was trained on 2 ranks"), otherCount.stderr)
        XCTAssertTrue(otherCount.stderr.contains("mpirun -np 2 mlpc run --resume"), otherCount.stderr)
        let alone = try MLPCProcess.run(["run", "--resume", out])
        XCTAssertEqual(alone.status, 2, alone.stderr)
        XCTAssertTrue(alone.stderr.contains("on one process: it was trained on 2 ranks"), alone.stderr)
    }

    /// Trains `spec` on 2 ranks uninterrupted, then again with an interruption in the second epoch or
    /// later, resumes it and compares the weights; returns the resumed run's directory.
    @discardableResult
    func interruptAndResume(spec: String, data: String, root: String) throws -> String {
        let binary = try MLPCProcess.binaryPath()
        let arguments = ["run", spec, "--data-dir", data, "--epochs", "40"]
        let whole = try launch(2, arguments + ["--out", root + "/whole", "--quiet"])
        XCTAssertEqual(whole.status, 0, whole.stderr)

        let out = root + "/interrupted"
        let job = try BackgroundJob(executable: try mpirun(), arguments: Self.launcherFlags + ["-np", "2", binary] + arguments + ["--out", out])
        defer { job.stop() }
        MLPCProcess.wait(for: job.process, upTo: 60, every: 5_000) { MLPCProcess.firstEpochRecorded(in: out) }
        // Only rank 1 gets SIGTERM: rank 0 learns of the stop through the allreduce alone, the ranks
        // must still stop after the same step, and rank 0 writes the checkpoint. (Ctrl-C, which reaches
        // mpirun alone, is testCtrlCToMpirunEndsTheJobInACheckpoint.)
        XCTAssertTrue(job.process.isRunning, "the run ended before it could be interrupted")
        let second = try XCTUnwrap(rankProcess(1, binary: binary), "rank 1 not found")
        XCTAssertEqual(kill(second, SIGTERM), 0)
        XCTAssertTrue(job.wait(seconds: 30), "the interrupted job did not end")
        XCTAssertTrue(job.stderr().contains("checkpoint saved to"), job.stderr())
        XCTAssertTrue(job.stderr().contains("mpirun -np 2 mlpc run --resume"), job.stderr())
        let record = try String(contentsOfFile: out + "/run.json", encoding: .utf8)
        XCTAssertTrue(record.contains("\"interrupted\""), record)

        let resumed = try launch(2, ["run", "--resume", out, "--quiet"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertEqual(weights(out), weights(root + "/whole"), "the resumed run differs from the uninterrupted one")
        return out
    }

    /// Ctrl-C in a terminal reaches mpirun alone (each rank runs in a process group of its own).
    /// mpirun then sends the ranks SIGCONT, after odls_base_sigkill_timeout seconds (1 by default)
    /// SIGTERM, and as long again later SIGKILL: in between, the ranks finish their step and rank 0
    /// writes the checkpoint. The job is far from its last epoch when the signal comes.
    func testCtrlCToMpirunEndsTheJobInACheckpoint() throws {
        let tiny = try tinyRun(train: 1140)
        let binary = try MLPCProcess.binaryPath()
        let out = tiny.root + "/interrupted"
        let job = try BackgroundJob(
            executable: try mpirun(),
            arguments: Self.launcherFlags + ["-np", "2", binary, "run", tiny.spec, "--data-dir", tiny.data, "--epochs", "100000", "--out", out])
        defer { job.stop() }
        MLPCProcess.wait(for: job.process, upTo: 60, every: 5_000) { MLPCProcess.firstEpochRecorded(in: out) }
        XCTAssertTrue(job.process.isRunning, "the run ended before it could be interrupted")
        XCTAssertEqual(kill(job.process.processIdentifier, SIGINT), 0)
        let signalled = Date()
        XCTAssertTrue(job.wait(seconds: 30), "the interrupted job did not end")
        XCTAssertLessThan(Date().timeIntervalSince(signalled), 10)
        XCTAssertNotEqual(job.process.terminationStatus, 0)
        XCTAssertTrue(job.stderr().contains("checkpoint saved to \(out)/checkpoint.safetensors"), job.stderr())
        XCTAssertTrue(job.stderr().contains("resume with: mpirun -np 2 mlpc run --resume \(out)"), job.stderr())
        let record = try String(contentsOfFile: out + "/run.json", encoding: .utf8)
        XCTAssertTrue(record.contains("\"interrupted\""), record)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/weights.safetensors"), "an interrupted run wrote final weights")

        // The checkpoint is usable: the resumed job finishes the interrupted epoch.
        let completed = try String(contentsOfFile: out + "/metrics.jsonl", encoding: .utf8).split(separator: "\n").count
        let resumed = try launch(2, ["run", "--resume", out, "--epochs", String(completed + 1), "--quiet"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertNotNil(weights(out))
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
