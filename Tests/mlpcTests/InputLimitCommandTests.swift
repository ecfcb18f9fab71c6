import Foundation
import Runtime
import Files
import TestSupport
import XCTest

/// Inputs that could make mlpc slow or huge, through the command line: each is refused (or handled)
/// within seconds, without allocating for what the input merely claims.
final class InputLimitCommandTests: XCTestCase {
    nonisolated(unsafe) static var trainedRoot: String?

    override class func tearDown() {
        if let root = trainedRoot { try? FileManager.default.removeItem(atPath: root) }
        trainedRoot = nil
        super.tearDown()
    }

    /// The tiny dataset trained once for 1 epoch: the directory holding the data, tiny.yaml and run/.
    func trained() throws -> String {
        if let root = Self.trainedRoot { return root }
        let root = try createTemporaryDirectory("mlpc-inputlimit")
        try TinyDataset.write(to: root)
        try writeFile(root + "/tiny.yaml", TinyDataset.spec(epochs: 1))
        let result = try MLPCProcess.run(["run", root + "/tiny.yaml", "--data-dir", root, "--out", root + "/run", "--quiet"], timeout: 120)
        assertNoCrash(result)
        guard result.status == 0 else { throw FixtureFailure("training failed: \(result.stderr)") }
        Self.trainedRoot = root
        return root
    }

    /// A model file whose embedded spec asks for a 4 GB arena (a layer of 500,000 outputs) while its
    /// tensors are those of a 16-unit layer is refused for its tensors, not after allocating the arena:
    /// under a 1.5 GB address-space limit the refusal names the tensors that do not fit.
    func testModelFileWhoseSpecOutgrowsItsTensorsIsRefusedBeforeTheArenaIsMade() throws {
        let root = try trained()
        var file = try ModelFileCommandTests.TensorFile(path: root + "/run/model.safetensors")
        let spec = try XCTUnwrap(file.metadata["spec"])
        XCTAssertTrue(spec.contains("out: 16"), spec)
        let forged = spec.replacingOccurrences(of: "out: 16", with: "out: 500000")
        file.metadata["spec"] = forged
        file.metadata["spec_sha256"] = SHA256.hash(Array(forged.utf8)).hex
        let model = root + "/forged.safetensors"
        try file.write(to: model)

        let binary = try MLPCProcess.binaryPath()
        // The sanitizers' runtimes reserve terabytes of address space for their shadow memory, so under
        // them the limit is left out (the plain pass proves the bound; the refusal is the same).
        let limit = ProcessInfo.processInfo.environment["MLPC_TEST_SANITIZER"] == nil ? "ulimit -v 1500000 && " : ""
        let start = Date()
        let result = try MLPCProcess.run(
            ["-c", limit + "exec \"$0\" eval \"$1\" --data-dir \"$2\"", binary, model, root], timeout: 60,
            executable: "/bin/sh")
        let seconds = Date().timeIntervalSince(start)
        assertNoCrash(result)
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("forged.safetensors"), result.stderr)
        XCTAssertTrue(result.stderr.contains("[500000, 36]"), result.stderr)
        XCTAssertFalse(result.stderr.contains("memory"), result.stderr)
        XCTAssertLessThan(seconds, 10, "refusing the forged model took \(seconds) s")
    }

    /// A gzip file whose header claims 100 million images (3.6 GB of pixels, past the 2 GiB limit on
    /// an IDX file's data) is refused by `mlpc check` by the same rule, in the same words, as by `mlpc run`.
    func testCheckAndRunApplyOneSizeRuleToIDXHeaders() throws {
        let root = try createTemporaryDirectory("mlpc-idx-limit")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try TinyDataset.write(to: root)
        func bigEndian(_ value: Int) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * $0)) } }
        let count = 100_000_000
        for (name, header) in [
            (TinyDataset.trainImages, [0, 0, 8, 3] + bigEndian(count) + bigEndian(TinyDataset.side) + bigEndian(TinyDataset.side)),
            (TinyDataset.trainLabels, [0, 0, 8, 1] + bigEndian(count)),
        ] {
            try FileManager.default.removeItem(atPath: root + "/" + name)
            try writeFile(root + "/" + name + ".gz", bytes: FuzzInputChecks.storedGzip(header))
        }
        try writeFile(root + "/tiny.yaml", TinyDataset.spec(epochs: 1))
        let limit = "more than the limit of \(2 << 30)"

        let check = try MLPCProcess.run(["check", root + "/tiny.yaml", "--data-dir", root], timeout: 60)
        assertNoCrash(check)
        XCTAssertEqual(check.status, 1, check.stdout + check.stderr)
        XCTAssertTrue(check.stderr.contains(TinyDataset.trainImages + ".gz"), check.stderr)
        XCTAssertTrue(check.stderr.contains(limit), check.stderr)

        let run = try MLPCProcess.run(["run", root + "/tiny.yaml", "--data-dir", root, "--out", root + "/run", "--quiet"], timeout: 60)
        assertNoCrash(run)
        XCTAssertEqual(run.status, 1, run.stderr)
        XCTAssertTrue(run.stderr.contains(limit), run.stderr)
    }

    /// `--batch-size 1048576` on 120 training images, and an eval_batch_size of 1000 on 30 test images,
    /// plan the arena of batches of 120 and 30 (with a warning for each) and train exactly as those
    /// sizes do.
    func testBatchesLargerThanTheDataAreSizedByTheData() throws {
        let root = try createTemporaryDirectory("mlpc-batch-fit")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try TinyDataset.write(to: root)
        let spec = TinyDataset.spec(epochs: 2)
        try writeFile(root + "/tiny.yaml", spec)
        try writeFile(
            root + "/fitted.yaml",
            spec.replacingOccurrences(of: "  batch_size: 16", with: "  batch_size: \(TinyDataset.trainCount)\n  eval_batch_size: \(TinyDataset.testCount)"))

        let large = try MLPCProcess.run(
            ["run", root + "/tiny.yaml", "--data-dir", root, "--out", root + "/large", "--batch-size", "1048576"], timeout: 120)
        assertNoCrash(large)
        XCTAssertEqual(large.status, 0, large.stderr)
        XCTAssertTrue(large.stderr.contains("--batch-size 1048576 is larger than the 120 training examples"), large.stderr)
        XCTAssertTrue(large.stderr.contains("eval_batch_size 1000 is larger than the 30 test examples"), large.stderr)
        let fitted = try MLPCProcess.run(["run", root + "/fitted.yaml", "--data-dir", root, "--out", root + "/fitted"], timeout: 120)
        assertNoCrash(fitted)
        XCTAssertEqual(fitted.status, 0, fitted.stderr)
        XCTAssertFalse(fitted.stderr.contains("W0404"), fitted.stderr)

        func arena(_ output: String) -> String? {
            output.split(separator: "\n").first { $0.hasPrefix("training ") }?.components(separatedBy: "arena ").last
        }
        XCTAssertNotNil(arena(large.stdout), large.stdout)
        XCTAssertEqual(arena(large.stdout), arena(fitted.stdout))
        let weights = { (run: String) in FileManager.default.contents(atPath: root + "/" + run + "/weights.safetensors") }
        XCTAssertNotNil(weights("large"))
        XCTAssertEqual(weights("large"), weights("fitted"), "the run with the large batch trained differently from batches of 120")
    }

    /// Data the run downloads itself has no counts when the spec is planned: once it is there, batches
    /// larger than it can fill are lowered and the spec planned again, as for data already on disk.
    func testBatchesAreSizedByDataTheRunDownloads() throws {
        guard let mnist = ProcessInfo.processInfo.environment["MLPC_TEST_MNIST_DIR"] else {
            throw XCTSkip("needs MNIST's gzipped IDX files (MLPC_TEST_MNIST_DIR, which scripts/test sets)")
        }
        let root = try createTemporaryDirectory("mlpc-batch-fit-download")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let mirror = try LocalHTTPServer(serving: mnist)
        defer { mirror.stop() }
        let spec = root + "/mnist.yaml"
        try writeFile(spec, try String(contentsOfFile: MLPCProcess.repositoryRoot + "/specs/mnist_mlp.yaml", encoding: .utf8))
        let downloaded = try MLPCProcess.run(
            ["run", spec, "--data-dir", root + "/data", "--out", root + "/large", "--batch-size", "1048576", "--epochs", "1"],
            environment: ["MLPC_MNIST_MIRRORS": mirror.baseURL], timeout: 300)
        assertNoCrash(downloaded)
        XCTAssertEqual(downloaded.status, 0, downloaded.stderr)
        XCTAssertTrue(downloaded.stderr.contains("--batch-size 1048576 is larger than the 60000 training examples"), downloaded.stderr)
        // The same run on the data now on disk, with the batch it can fill.
        let fitted = try MLPCProcess.run(
            ["run", spec, "--data-dir", root + "/data", "--out", root + "/fitted", "--batch-size", "60000", "--epochs", "1"], timeout: 300)
        XCTAssertEqual(fitted.status, 0, fitted.stderr)
        func arena(_ output: String) -> String? {
            output.split(separator: "\n").first { $0.hasPrefix("training ") }?.components(separatedBy: "arena ").last
        }
        XCTAssertNotNil(arena(downloaded.stdout), downloaded.stdout)
        XCTAssertEqual(arena(downloaded.stdout), arena(fitted.stdout))
    }
}
