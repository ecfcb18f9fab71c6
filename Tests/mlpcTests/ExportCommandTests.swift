import Foundation
import TestSupport
import XCTest

/// `mlpc export`: the exported models pass ONNX's checker and give `mlpc predict`'s outputs in ONNX
/// Runtime; bad models and outputs that cannot be written fail clearly and leave nothing behind.
final class ExportCommandTests: XCTestCase {
    var folder = ""
    var data: String { folder + "/data" }

    override func setUpWithError() throws {
        folder = try makeTemporaryDirectory(self, "mlpc-export")
        // 400 training images give 100 test images.
        try TinyDataset.write(to: data, train: 400)
    }

    /// Trains `specText` on the tiny data into `folder/run` and returns the run directory.
    func trainedRun(_ specText: String, name: String = "run", epochs: Int = 3) throws -> String {
        let spec = folder + "/\(name).yaml"
        try writeFile(spec, specText)
        let out = folder + "/\(name)"
        let result = try MLPCProcess.run(
            ["run", spec, "--data-dir", data, "--out", out, "--epochs", "\(epochs)", "--quiet"], timeout: 300)
        assertNoCrash(result)
        XCTAssertEqual(result.status, 0, result.stderr)
        guard result.status == 0 else { throw FixtureFailure("training failed (reported above)") }
        return out
    }

    /// `mlpc predict --format json` on the first `count` test images, saved to a file.
    func predictions(_ model: String, count: Int, dataDir: String? = nil) throws -> String {
        let indices = (0..<count).flatMap { ["--index", "\($0)"] }
        let result = try MLPCProcess.run(["predict", model, "--format", "json", "--data-dir", dataDir ?? data] + indices, timeout: 300)
        assertNoCrash(result)
        XCTAssertEqual(result.status, 0, result.stderr)
        let path = folder + "/predictions-\(UUID().uuidString).json"
        try writeFile(path, result.stdout)
        return path
    }

    func export(_ arguments: [String]) throws -> CommandResult {
        let result = try MLPCProcess.run(["export"] + arguments, timeout: 120)
        assertNoCrash(result)
        return result
    }

    /// Exports the run, runs the ONNX check on 100 test images, and asserts what every exported model
    /// must satisfy: the checker passes, IR 8 and opset 17, one input with a symbolic batch, no
    /// initializer among the inputs, named outputs, and mlpc predict's outputs within 1e-5.
    @discardableResult
    func exportAndCompare(
        run: String, images: String, dataDir: String? = nil, expectedInputDims: [String], file: StaticString = #filePath, line: UInt = #line
    ) throws -> ONNXRuntimeCheck.Report {
        let onnx = folder + "/\(UUID().uuidString).onnx"
        let exported = try export([run, "-o", onnx])
        XCTAssertEqual(exported.status, 0, exported.stderr, file: file, line: line)
        XCTAssertTrue(exported.stdout.contains("wrote \(onnx)"), exported.stdout, file: file, line: line)
        let report = try ONNXRuntimeCheck.run(model: onnx, predictions: predictions(run, count: 100, dataDir: dataDir), images: images)
        XCTAssertEqual(report.rows, 100, file: file, line: line)
        XCTAssertEqual(report.irVersion, 8, file: file, line: line)
        XCTAssertEqual(report.opsets, ["": 17], file: file, line: line)
        XCTAssertEqual(report.inputs, ["pixels"], file: file, line: line)
        XCTAssertEqual(report.inputDims, expectedInputDims, file: file, line: line)
        XCTAssertEqual(report.initializersAmongInputs, [], file: file, line: line)
        XCTAssertEqual(report.outputs, ["logits", "probabilities"], file: file, line: line)
        XCTAssertFalse(report.opTypes.contains("Dropout"), file: file, line: line)
        XCTAssertLessThanOrEqual(report.maxLogitDifference, 1e-5, file: file, line: line)
        XCTAssertLessThanOrEqual(report.maxProbabilityDifference, 1e-5, file: file, line: line)
        XCTAssertLessThanOrEqual(report.singleRowMaxDifference, 1e-5, file: file, line: line)
        XCTAssertTrue(report.classesEqual, "ONNX Runtime's classes differ from mlpc predict's", file: file, line: line)
        // The spec in the metadata is the model file's, by its SHA-256 (run.json records the same one).
        let record = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: run + "/run.json"))) as? [String: Any]
        XCTAssertEqual(report.metadata["spec_sha256"], record?["spec_sha256"] as? String, file: file, line: line)
        XCTAssertEqual(report.metadata["spec"], try String(contentsOfFile: run + "/spec.yaml", encoding: .utf8), file: file, line: line)
        XCTAssertEqual(report.metadata["input_name"], "pixels", file: file, line: line)
        XCTAssertEqual(report.metadata["input_shape"], "[" + expectedInputDims.joined(separator: ", ") + "]", file: file, line: line)
        XCTAssertTrue(report.docString.contains("Input 'pixels'"), report.docString, file: file, line: line)
        return report
    }

    func testTinyMLPMatchesPredictInONNXRuntime() throws {
        let run = try trainedRun(TinyDataset.spec(epochs: 3))
        let report = try exportAndCompare(run: run, images: data + "/" + TinyDataset.testImages, expectedInputDims: ["batch", "1", "6", "6"])
        XCTAssertEqual(report.opTypes, ["Mul", "Add", "Flatten", "Gemm", "Relu", "Gemm", "Softmax"])
    }

    /// Every layer kind and activation, fused into a linear or on its own (before the flatten, on the
    /// image's shape, too), dropout in two places and a linear without bias.
    func testEveryLayerKindMatchesPredictInONNXRuntime() throws {
        let spec = """
            name: every_kind
            seed: 5
            data:
              dir: unused
              normalize: {mean: 0.1307, std: 0.3081}
            model:
              input_shape: [1, \(TinyDataset.side), \(TinyDataset.side)]
              layers:
                - tanh
                - dropout: {p: 0.1}
                - flatten
                - linear: {out: 12, activation: leaky_relu, bias: false}
                - linear: {out: 12}
                - leaky_relu: {negative_slope: 0.2}
                - linear: {out: 12, activation: sigmoid}
                - linear: {out: 12, activation: gelu}
                - dropout: {p: 0.3}
                - gelu: {approximate: tanh}
                - relu
                - linear: {out: 12, activation: tanh}
                - sigmoid
                - linear: {out: \(TinyDataset.classes)}
            loss: cross_entropy
            optimizer: {kind: adam, lr: 0.01}
            training: {batch_size: 16, epochs: 3, threads: 1}
            """
        let run = try trainedRun(spec)
        let report = try exportAndCompare(run: run, images: data + "/" + TinyDataset.testImages, expectedInputDims: ["batch", "1", "6", "6"])
        for op in ["Tanh", "Flatten", "Gemm", "LeakyRelu", "Sigmoid", "Erf", "Relu", "Softmax"] {
            XCTAssertTrue(report.opTypes.contains(op), "\(op) missing from \(report.opTypes)")
        }
    }

    /// Every convolutional layer kind: `same` padding with an even kernel (the extra column at the
    /// right), groups, dilation, pools with padding and ceil_mode (the last window over the edge),
    /// batch norm after a convolution, without affine, and after a linear, and global pooling.
    func testEveryConvolutionalLayerKindMatchesPredictInONNXRuntime() throws {
        let spec = """
            name: every_cnn_kind
            seed: 1
            data:
              dir: unused
              normalize: {mean: 0.1307, std: 0.3081}
            model:
              input_shape: [1, \(TinyDataset.side), \(TinyDataset.side)]
              layers:
                - conv2d: {out: 4, kernel: 3, padding: same, activation: relu}
                - batch_norm
                - max_pool2d: {kernel: 3, stride: 2, padding: 1, ceil_mode: true}
                - conv2d: {out: 6, kernel: 2, padding: same, groups: 2}
                - avg_pool2d: {kernel: 3, stride: 2, padding: 1, ceil_mode: true}
                - conv2d: {out: 8, kernel: 2, dilation: 2, padding: 1}
                - batch_norm: {affine: false}
                - max_pool2d: {kernel: 2, ceil_mode: true}
                - avg_pool2d: {kernel: 1}
                - adaptive_avg_pool2d
                - flatten
                - linear: {out: 6}
                - batch_norm
                - relu
                - linear: {out: \(TinyDataset.classes)}
            loss: cross_entropy
            optimizer: {kind: adam, lr: 0.01}
            training: {batch_size: 16, epochs: 3, threads: 1}
            """
        let run = try trainedRun(spec)
        let report = try exportAndCompare(run: run, images: data + "/" + TinyDataset.testImages, expectedInputDims: ["batch", "1", "6", "6"])
        for op in ["Conv", "BatchNormalization", "MaxPool", "Pad", "AveragePool", "GlobalAveragePool"] {
            XCTAssertTrue(report.opTypes.contains(op), "\(op) missing from \(report.opTypes)")
        }
    }

    /// The pooling options in ONNX Runtime: a dilated max pool, an average that does not count the
    /// padding (with ceil_mode's window over the edge), an adaptive average of equal windows, and a
    /// batch norm with momentum: null.
    func testPoolingOptionsMatchPredictInONNXRuntime() throws {
        let spec = """
            name: pool_options
            seed: 2
            data:
              dir: unused
              normalize: {mean: 0.1307, std: 0.3081}
            model:
              input_shape: [1, \(TinyDataset.side), \(TinyDataset.side)]
              layers:
                - conv2d: {out: 4, kernel: 3, padding: 1}
                - batch_norm: {momentum: null}
                - relu
                - max_pool2d: {kernel: 2, stride: 1, dilation: 2, padding: 1}
                - avg_pool2d: {kernel: 3, stride: 2, padding: 1, ceil_mode: true, count_include_pad: false}
                - adaptive_avg_pool2d: [2, 2]
                - flatten
                - linear: {out: \(TinyDataset.classes)}
            loss: cross_entropy
            optimizer: {kind: adam, lr: 0.01}
            training: {batch_size: 16, epochs: 3, threads: 1}
            """
        let run = try trainedRun(spec)
        let report = try exportAndCompare(run: run, images: data + "/" + TinyDataset.testImages, expectedInputDims: ["batch", "1", "6", "6"])
        for op in ["Conv", "BatchNormalization", "MaxPool", "AveragePool"] {
            XCTAssertTrue(report.opTypes.contains(op), "\(op) missing from \(report.opTypes)")
        }
    }

    func testMSEModelMatchesPredictInONNXRuntime() throws {
        let spec = TinyDataset.spec(epochs: 3).replacingOccurrences(of: "loss: cross_entropy", with: "loss: mse")
        let run = try trainedRun(spec)
        let report = try exportAndCompare(run: run, images: data + "/" + TinyDataset.testImages, expectedInputDims: ["batch", "1", "6", "6"])
        XCTAssertEqual(report.metadata["loss"], "mse")
    }

    /// The reference spec, trained on the real MNIST files for one epoch (MLPC_TEST_MNIST_DIR). (After
    /// 20 epochs its logits reach about 50, where float32 sums in another order differ by up to 2e-5:
    /// README, "Exporting to ONNX".)
    func testReferenceMNISTSpecMatchesPredictInONNXRuntime() throws {
        guard let mnist = ProcessInfo.processInfo.environment["MLPC_TEST_MNIST_DIR"], !mnist.isEmpty else {
            throw XCTSkip("MLPC_TEST_MNIST_DIR is not set")
        }
        let out = folder + "/mnist"
        let trained = try MLPCProcess.run(
            ["run", MLPCProcess.repositoryRoot + "/specs/mnist_mlp.yaml", "--data-dir", mnist, "--out", out, "--epochs", "1", "--quiet"],
            timeout: 600)
        assertNoCrash(trained)
        XCTAssertEqual(trained.status, 0, trained.stderr)
        let report = try exportAndCompare(
            run: out, images: try mnistTestImages(mnist), dataDir: mnist, expectedInputDims: ["batch", "1", "28", "28"])
        XCTAssertEqual(report.opTypes, ["Mul", "Add", "Flatten", "Gemm", "Relu", "Gemm", "Relu", "Gemm", "Softmax"])
    }

    /// The CNN with batch norm and dropout (specs/mnist_cnn_bn.yaml), trained on the real MNIST files
    /// for one epoch (MLPC_TEST_MNIST_DIR): its running statistics are the ones training gathered.
    func testMNISTConvolutionalSpecMatchesPredictInONNXRuntime() throws {
        guard let mnist = ProcessInfo.processInfo.environment["MLPC_TEST_MNIST_DIR"], !mnist.isEmpty else {
            throw XCTSkip("MLPC_TEST_MNIST_DIR is not set")
        }
        let out = folder + "/mnist-cnn"
        let trained = try MLPCProcess.run(
            ["run", MLPCProcess.repositoryRoot + "/specs/mnist_cnn_bn.yaml", "--data-dir", mnist, "--out", out, "--epochs", "1", "--quiet"],
            timeout: 900)
        assertNoCrash(trained)
        XCTAssertEqual(trained.status, 0, trained.stderr)
        let report = try exportAndCompare(
            run: out, images: try mnistTestImages(mnist), dataDir: mnist, expectedInputDims: ["batch", "1", "28", "28"])
        for op in ["Conv", "BatchNormalization", "MaxPool", "Gemm", "Softmax"] {
            XCTAssertTrue(report.opTypes.contains(op), "\(op) missing from \(report.opTypes)")
        }
    }

    func mnistTestImages(_ mnist: String) throws -> String {
        try XCTUnwrap(
            ["t10k-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte"].map { mnist + "/" + $0 }.first { FileManager.default.fileExists(atPath: $0) })
    }

    // MARK: where the file goes

    func testDefaultOutputIsModelOnnxBesideTheModelFile() throws {
        let run = try trainedRun(TinyDataset.spec(epochs: 1))
        let result = try export([run])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: run + "/model.onnx"))
        XCTAssertTrue(result.stdout.contains("input float32 'pixels' [batch, 1, 6, 6]"), result.stdout)
        // A directory as --output gets model.onnx inside it; an existing file is replaced whole.
        let elsewhere = folder + "/exports"
        try FileManager.default.createDirectory(atPath: elsewhere, withIntermediateDirectories: true)
        XCTAssertEqual(try export([run + "/model.safetensors", "-o", elsewhere]).status, 0)
        XCTAssertEqual(
            FileManager.default.contents(atPath: elsewhere + "/model.onnx"), FileManager.default.contents(atPath: run + "/model.onnx"),
            "exporting the same model twice gives the same bytes")
    }

    func testWeightsFileExportsWithItsSpec() throws {
        let run = try trainedRun(TinyDataset.spec(epochs: 1))
        let refused = try export([run + "/weights.safetensors", "-o", folder + "/w.onnx"])
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.contains("--spec"), refused.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/w.onnx"))
        let result = try export([run + "/weights.safetensors", "--spec", run + "/spec.yaml", "-o", folder + "/w.onnx"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(FileManager.default.contents(atPath: folder + "/w.onnx"), try exportedBytes(of: run))
    }

    func exportedBytes(of run: String) throws -> Data? {
        let path = folder + "/reference-\(UUID().uuidString).onnx"
        XCTAssertEqual(try export([run, "-o", path]).status, 0)
        return FileManager.default.contents(atPath: path)
    }

    // MARK: bad input

    /// A damaged, foreign or wrong-kind model file is refused with the file's name, status 1, and no
    /// output file (an existing one is kept as it was).
    func testDamagedOrForeignModelFilesAreRefusedAndWriteNothing() throws {
        let run = try trainedRun(TinyDataset.spec(epochs: 1))
        let model = try XCTUnwrap(FileManager.default.contents(atPath: run + "/model.safetensors"))
        let cases: [(String, [UInt8], String)] = [
            ("truncated.safetensors", Array(model.prefix(model.count - 100)), "not a usable model file"),
            ("garbage.safetensors", Array("this is not a model\n".utf8), "not a usable model file"),
            ("empty.safetensors", [], "not a usable model file"),
            ("image.safetensors", ArtifactCLI.png(width: 1, height: 1, rgbRows: [[0, 0, 0]]), "not a usable model file"),
        ]
        let output = folder + "/kept.onnx"
        try writeFile(output, "an older export")
        for (name, bytes, expected) in cases {
            let path = folder + "/" + name
            try writeFile(path, bytes: bytes)
            let result = try export([path, "-o", output])
            XCTAssertEqual(result.status, 1, "\(name): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains(path), "\(name): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains(expected), "\(name): \(result.stderr)")
            XCTAssertEqual(try String(contentsOfFile: output, encoding: .utf8), "an older export", name)
        }
        let checkpoint = try export([run + "/checkpoint.safetensors", "-o", folder + "/c.onnx"])
        XCTAssertEqual(checkpoint.status, 1)
        XCTAssertTrue(checkpoint.stderr.contains("training checkpoint"), checkpoint.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/c.onnx"))
        try assertNoTemporaryFiles(folder)
    }

    func testMissingModelIsAnUnusableArgument() throws {
        let result = try export([folder + "/no-such-model.safetensors", "-o", folder + "/x.onnx"])
        XCTAssertEqual(result.status, 2)
        XCTAssertTrue(result.stderr.contains("no-such-model.safetensors"), result.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/x.onnx"))
    }

    /// An output that cannot be written (a missing folder, a file in the way of a folder, a read-only
    /// file system) is status 2 with the path named, and nothing is left there.
    func testOutputThatCannotBeWrittenLeavesNothing() throws {
        let run = try trainedRun(TinyDataset.spec(epochs: 1))
        try writeFile(folder + "/plainfile", "not a directory")
        for output in [folder + "/missing/model.onnx", folder + "/plainfile/model.onnx", "/proc/mlpc-export.onnx"] {
            let result = try export([run, "-o", output])
            XCTAssertEqual(result.status, 2, "\(output): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains(output), result.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: output), output)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/missing"))
        let itself = try export([run, "-o", run + "/model.safetensors"])
        XCTAssertEqual(itself.status, 2)
        XCTAssertTrue(itself.stderr.contains("the model file itself"), itself.stderr)
        XCTAssertEqual(try export([run + "/model.safetensors", "-o", folder + "/ok.onnx"]).status, 0, "the model file was damaged")
        try assertNoTemporaryFiles(folder)
    }

    /// A full disk, simulated by a file-size limit: the write fails with "File too large", the file
    /// that was at the output path is kept, and no temporary file remains.
    func testWriteFailureKeepsTheOldFileAndLeavesNoTemporaryFile() throws {
        if ProcessInfo.processInfo.environment["MLPC_TEST_SANITIZER"] == "thread" {
            throw XCTSkip("a file-size limit breaks the ThreadSanitizer runtime itself")
        }
        let run = try trainedRun(TinyDataset.spec(epochs: 1))
        let output = folder + "/out/model.onnx"
        try FileManager.default.createDirectory(atPath: folder + "/out", withIntermediateDirectories: true)
        try writeFile(output, "an older export")
        let binary = try MLPCProcess.binaryPath()
        let result = try MLPCProcess.run(
            ["-c", "ulimit -f 1; exec '\(binary)' export '\(run)' -o '\(output)'"], executable: "/bin/sh")
        XCTAssertFalse(result.killedBySignal, "mlpc was killed instead of reporting the failed write")
        XCTAssertEqual(result.status, 2, result.stderr)
        XCTAssertTrue(result.stderr.contains("File too large"), result.stderr)
        XCTAssertTrue(result.stderr.contains(output), result.stderr)
        XCTAssertEqual(try String(contentsOfFile: output, encoding: .utf8), "an older export")
        try assertNoTemporaryFiles(folder + "/out")
    }

    func assertNoTemporaryFiles(_ directory: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory)
        XCTAssertFalse(names.contains { $0.contains(".tmp-") }, "temporary files left: \(names)", file: file, line: line)
    }
}
