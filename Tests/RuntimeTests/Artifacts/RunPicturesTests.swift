import Foundation
import XCTest

@testable import Runtime
@testable import Figures
@testable import Files
@testable import DataSources
@testable import Execution

final class RunPicturesTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws { directory = try TinyData.makeDirectory(self) }

    func finishedRun(epochs: Int) throws -> (TrainingRun, Trainer.Evaluation) {
        let run = try TinyData.run(TinyData.specText(batch: 16), directory: directory, epochs: epochs)
        return (run, try run.finish())
    }

    func picture(_ run: TrainingRun, _ name: String) throws -> RasterImage {
        try readPNG(path: run.options.outputDirectory + "/" + name, as: .rgb)
    }

    /// finish() takes the evaluation that ended the last epoch instead of repeating it: it must be what
    /// evaluating the final parameters gives.
    func testFinishReportsTheEvaluationOfTheFinalParameters() throws {
        let run = try TinyData.run(TinyData.specText(batch: 16), directory: directory, epochs: 2)
        let kept = try XCTUnwrap(run.trainer.latestTestEvaluation, "the last epoch's evaluation was not kept")
        let final = try run.finish()
        let fresh = run.trainer.evaluate(run.data.test, indices: nil)
        for evaluation in [kept, final] {
            XCTAssertEqual(evaluation.correct, fresh.correct)
            XCTAssertEqual(evaluation.total, fresh.total)
            XCTAssertEqual(evaluation.confusion, fresh.confusion)
            XCTAssertEqual(evaluation.predictions, fresh.predictions)
        }
    }

    func testStartingAnEpochForgetsTheKeptEvaluation() throws {
        let run = try TinyData.run(TinyData.specText(batch: 16), directory: directory, epochs: 1)
        XCTAssertNotNil(run.trainer.latestTestEvaluation)
        run.trainer.stopRequested = { true }
        XCTAssertThrowsError(try run.trainer.runEpoch(2))
        XCTAssertNil(run.trainer.latestTestEvaluation, "an interrupted epoch changed the parameters but kept the old evaluation")
    }

    func testFinishWritesWeightsModelAndFourPictures() throws {
        let (run, _) = try finishedRun(epochs: 2)
        for name in ["weights.safetensors", "model.safetensors", "checkpoint.safetensors", "samples.png", "predictions.png", "curves.png", "confusion.png"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: run.options.outputDirectory + "/" + name), name)
        }
    }

    /// The pictures are drawn on two threads; a failure is reported as the sequential order would
    /// report it (samples, predictions, curves, confusion), and the pictures that could be written are.
    func testTheFirstFailingPictureInListingOrderIsReported() throws {
        let run = try TinyData.run(TinyData.specText(batch: 16), directory: directory, epochs: 1)
        let out = run.options.outputDirectory
        // A folder where a picture goes: renaming the finished file onto it fails.
        for blocked in [RunPictureName.confusion, RunPictureName.samples] {
            try FileManager.default.createDirectory(atPath: out + "/" + blocked, withIntermediateDirectories: false)
        }
        XCTAssertThrowsError(try run.finish()) { error in
            XCTAssertTrue("\(error)".contains(RunPictureName.samples), "\(error)")
            XCTAssertFalse("\(error)".contains(RunPictureName.confusion), "\(error)")
        }
        for written in [RunPictureName.predictions, RunPictureName.curves] {
            XCTAssertNoThrow(try picture(run, written), written)
        }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: out).filter { $0.contains(".tmp") }
        XCTAssertEqual(leftovers, [], "no half-written picture is left behind")
    }

    func testSamplesShowTheFirstTrainingBatchWithLabels() throws {
        let (run, _) = try finishedRun(epochs: 1)
        let image = try picture(run, RunPictureName.samples)
        run.trainer.prepareOrder(epoch: 1)
        let batch = Array(run.trainer.epochOrder.prefix(16)).map { Int($0) }
        let layout = ImageGridLayout(
            count: 16, imageWidth: 6, imageHeight: 6, titles: batch.map { "Label: \(run.data.train.classIndex(at: $0)!)" }, columns: 8,
            imageScale: 3, titleScale: 2)
        XCTAssertEqual(image.width, layout.canvasWidth)
        XCTAssertEqual(image.height, layout.canvasHeight)
        // Cell 5 shows training image batch[5]: its pixel (x 4, y 1), scaled by 3, in gray.
        let origin = layout.imageOrigin(5)
        let expected = run.data.train.pixels(at: batch[5])![1 * 6 + 4]
        XCTAssertEqual(image.sample(x: origin.x + 4 * 3 + 1, y: origin.y + 1 * 3 + 1, channel: 0), expected)
        XCTAssertEqual(image.sample(x: origin.x + 4 * 3 + 1, y: origin.y + 1 * 3 + 1, channel: 2), expected)
    }

    func testPredictionsShowTheFirstTestImagesAndMarkMistakesInRed() throws {
        let (run, evaluation) = try finishedRun(epochs: 1)
        let image = try picture(run, RunPictureName.predictions)
        let shown = min(64, run.data.test.count)
        let predicted = evaluation.predictions.prefix(shown).map { Int($0) }
        let truth = (0..<shown).map { run.data.test.classIndex(at: $0)! }
        let layout = ImageGridLayout(
            count: shown, imageWidth: 6, imageHeight: 6, titles: zip(predicted, truth).map { predictionTitle(predicted: $0, truth: $1) },
            columns: 8, imageScale: 3, titleScale: 1)
        XCTAssertEqual(image.width, layout.canvasWidth)
        XCTAssertEqual(image.height, layout.canvasHeight)
        for index in 0..<shown {
            // The frame's top-left corner: red for a mistake, white paper otherwise.
            let origin = layout.imageOrigin(index)
            let x = origin.x - ImageGridLayout.framePad, y = origin.y - ImageGridLayout.framePad
            let red = image.sample(x: x, y: y, channel: 0), green = image.sample(x: x, y: y, channel: 1)
            if predicted[index] != truth[index] {
                XCTAssertEqual([red, green], [Color.red.r, Color.red.g], "image \(index)")
            } else {
                XCTAssertEqual([red, green], [255, 255], "image \(index)")
            }
        }
    }

    func testCurvesAndConfusionHaveTheirFiguresSizes() throws {
        let (run, evaluation) = try finishedRun(epochs: 3)
        let curves = try picture(run, RunPictureName.curves)
        XCTAssertEqual(curves.width, TrainingCurvesLayout.canvasWidth)
        XCTAssertEqual(curves.height, TrainingCurvesLayout.canvasHeight)
        // The last epoch's loss point is drawn in the loss colour.
        let panel = TrainingCurvesLayout.panel(0, values: run.metrics.map(\.meanLoss))
        let x = panel.canvasX(3), y = panel.canvasY(run.metrics[2].meanLoss)
        XCTAssertEqual(curves.sample(x: x, y: y, channel: 2), Color.blue.b)

        let confusion = try picture(run, RunPictureName.confusion)
        let layout = ConfusionMatrixLayout(matrix: evaluation.confusion, classLabels: ["0", "1", "2"])
        XCTAssertEqual(confusion.width, layout.canvasWidth)
        XCTAssertEqual(confusion.height, layout.canvasHeight)
        // The fullest cell is the darkest blue; a cell corner is free of text.
        let fullest = evaluation.confusion.enumerated().flatMap { row, counts in counts.enumerated().map { (row, $0, $1) } }
            .max { $0.2 < $1.2 }!
        let corner = layout.cellOrigin(row: fullest.0, column: fullest.1)
        XCTAssertEqual(
            Color(confusion.sample(x: corner.x + 1, y: corner.y + 1, channel: 0), confusion.sample(x: corner.x + 1, y: corner.y + 1, channel: 1),
                  confusion.sample(x: corner.x + 1, y: corner.y + 1, channel: 2)),
            ColorMap.blues.color(for: 255))
    }
}
