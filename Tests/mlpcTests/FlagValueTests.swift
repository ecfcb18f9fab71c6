import Foundation
import XCTest

/// Flag values a user can get wrong: negative numbers, empty paths, and `mlpc bench` pointed at data
/// that is not usable.
final class FlagValueTests: XCTestCase {
    var folder = ""
    var data: String { folder + "/data" }
    var specPath: String { folder + "/tiny.yaml" }

    override func setUpWithError() throws {
        folder = try makeTemporaryDirectory(self, "mlpc-flag-values")
        try TinyDataset.write(to: data)
        try writeFile(specPath, TinyDataset.spec(epochs: 1))
    }

    func assertUsageError(_ arguments: [String], says text: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let result = try MLPCProcess.run(arguments)
        assertNoCrash(result, file: file, line: line)
        XCTAssertEqual(result.status, 2, result.stderr, file: file, line: line)
        XCTAssertTrue(result.stderr.contains(text), "\(arguments): \(result.stderr)", file: file, line: line)
    }

    /// "--epochs -1" is a value out of range, not a missing value followed by an unknown option.
    func testNegativeNumbersAreOutOfRange() throws {
        try assertUsageError(["run", specPath, "--epochs", "-1"], says: "--epochs must be between 1 and 1048576")
        try assertUsageError(["run", specPath, "--threads", "-2"], says: "--threads must be between 1 and 1024")
        try assertUsageError(["show", data, "--index", "-1"], says: "--index -1 is negative")
        try assertUsageError(["predict", folder, "--index", "-3"], says: "--index -3 is negative")
        try assertUsageError(["bench", specPath, "--steps", "-5"], says: "--steps must be between 1 and 1000000")
    }

    /// The spec's own bound on epochs holds for the flag too.
    func testEpochsUpToTheSpecsBoundAreAccepted() throws {
        let result = try MLPCProcess.run(["run", specPath, "--epochs", "1048576", "--data-dir", folder + "/none", "--out", folder + "/run"],
                                         environment: ["MLPC_MNIST_MIRRORS": "http://127.0.0.1:1/"])
        XCTAssertEqual(result.status, 1, result.stderr)  // accepted; then the data is missing
        XCTAssertFalse(result.stderr.contains("--epochs must be"), result.stderr)
        try assertUsageError(["run", specPath, "--epochs", "1048577"], says: "--epochs must be between 1 and 1048576")
    }

    func testEmptyPathsAreRefused() throws {
        try assertUsageError(["run", specPath, "--out", ""], says: "--out is an empty path")
        try assertUsageError(["run", "--resume", ""], says: "--resume is an empty path")
        try assertUsageError(["check", specPath, "--data-dir", ""], says: "--data-dir is an empty path")
        try assertUsageError(["check", ""], says: "the spec path is empty")
        try assertUsageError(["eval", ""], says: "the model path is empty")
        try assertUsageError(["show", "", "--index", "0"], says: "the dataset directory is an empty path")
    }

    /// Swift would decode a path in another encoding with U+FFFD in place of its bytes, and the run
    /// would write to another directory than the one named: such an argument is refused.
    func testAnArgumentThatIsNotUTF8IsRefused() throws {
        let shell = Process()
        shell.executableURL = URL(fileURLWithPath: "/bin/sh")
        // $0 is mlpc; printf makes the byte 0xFE, which no UTF-8 text contains.
        shell.arguments = ["-c", #"exec "$0" run "$1" --out "$2/out$(printf '\376')""#, try MLPCProcess.binaryPath(), specPath, folder]
        let errors = Pipe()
        shell.standardError = errors
        shell.standardOutput = FileHandle.nullDevice
        try shell.run()
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        shell.waitUntilExit()
        XCTAssertEqual(shell.terminationStatus, 2, text)
        XCTAssertTrue(text.contains("argument 4"), text)
        XCTAssertTrue(text.contains("is not valid UTF-8"), text)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder).sorted(), ["data", "tiny.yaml"])
    }

    /// bench prints text or json: its help lists those, and dot is refused with that reason.
    func testBenchFormatsAreTextAndJSON() throws {
        let help = try MLPCProcess.run(["help", "bench"])
        XCTAssertTrue(help.stdout.contains("(values: text, json;"), help.stdout)
        try assertUsageError(["bench", specPath, "--format", "dot"], says: "bench prints text or json")
    }

    func testBenchTimesTheDataItIsGiven() throws {
        let result = try MLPCProcess.run(["bench", specPath, "--data-dir", data, "--steps", "5", "--warmup", "2"])
        assertNoCrash(result)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("data: \(data) (120 training images)"), result.stdout)
        XCTAssertTrue(result.stdout.contains("fc1.linear+bias+relu"), result.stdout)
    }

    /// --weights starts the timed steps from a trained network's parameters; the report says how many
    /// of the first layer's features were live. A file that is missing or not a weights file is refused.
    func testBenchStartsFromAWeightsFile() throws {
        let run = try MLPCProcess.run(["run", specPath, "--data-dir", data, "--out", folder + "/run", "--epochs", "2"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let weights = folder + "/run/weights.safetensors"
        let result = try MLPCProcess.run(["bench", specPath, "--data-dir", data, "--weights", weights, "--steps", "5", "--warmup", "2"])
        assertNoCrash(result)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("features were live in the warm-up"), result.stdout)
        let json = try MLPCProcess.run(
            ["bench", specPath, "--data-dir", data, "--weights", weights, "--steps", "5", "--warmup", "2", "--format", "json"])
        XCTAssertEqual(json.status, 0, json.stderr)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let live = try XCTUnwrap(object["live_features"] as? [String: Any], json.stdout)
        XCTAssertEqual(live["layer"] as? String, "fc1")

        let missing = try MLPCProcess.run(["bench", specPath, "--data-dir", data, "--weights", folder + "/none.safetensors"])
        assertNoCrash(missing)
        XCTAssertEqual(missing.status, 2, missing.stderr)
        XCTAssertTrue(missing.stderr.contains(folder + "/none.safetensors"), missing.stderr)
        let notWeights = try MLPCProcess.run(["bench", specPath, "--data-dir", data, "--weights", specPath])
        assertNoCrash(notWeights)
        XCTAssertEqual(notWeights.status, 1, notWeights.stderr)
        XCTAssertTrue(notWeights.stderr.contains(specPath + ": not a usable weights file"), notWeights.stderr)
        try assertUsageError(["bench", specPath, "--weights", ""], says: "--weights is empty")
    }

    /// Damaged data, or a named directory without the files, is an error rather than a silent switch to
    /// random images; --synthetic asks for those.
    func testBenchRefusesDataThatIsNotUsable() throws {
        try writeFile(data + "/" + TinyDataset.trainLabels, bytes: [0, 0, 8])
        let damaged = try MLPCProcess.run(["bench", specPath, "--data-dir", data, "--steps", "5", "--warmup", "2"])
        assertNoCrash(damaged)
        XCTAssertEqual(damaged.status, 1, damaged.stderr)
        XCTAssertTrue(damaged.stderr.contains(data + "/" + TinyDataset.trainLabels), damaged.stderr)
        XCTAssertTrue(damaged.stderr.contains("--synthetic"), damaged.stderr)

        let missing = try MLPCProcess.run(["bench", specPath, "--data-dir", folder + "/none", "--steps", "5", "--warmup", "2"])
        XCTAssertEqual(missing.status, 1, missing.stderr)
        XCTAssertTrue(missing.stderr.contains("dataset files are missing"), missing.stderr)

        let synthetic = try MLPCProcess.run(["bench", specPath, "--data-dir", data, "--synthetic", "--steps", "5", "--warmup", "2"])
        XCTAssertEqual(synthetic.status, 0, synthetic.stderr)
        XCTAssertTrue(synthetic.stdout.contains("data: synthetic"), synthetic.stdout)
    }
}
