import Foundation
import XCTest

@testable import Runtime
@testable import Figures
@testable import Files
@testable import DataSources
@testable import Execution

final class FigureTests: XCTestCase {
    /// A 28x28 black image with a white square at columns 10..<14, rows 8..<12.
    private func squareDigit() -> [UInt8] {
        var pixels = [UInt8](repeating: 0, count: 28 * 28)
        for y in 8..<12 { for x in 10..<14 { pixels[y * 28 + x] = 255 } }
        return pixels
    }

    private func count(_ canvas: Canvas, _ color: Color, x: Int, y: Int, width: Int, height: Int) -> Int {
        var total = 0
        for row in y..<(y + height) {
            for column in x..<(x + width) where canvas.pixel(x: column, y: row) == color { total += 1 }
        }
        return total
    }

    /// Writes the canvas, decodes it with the independent Python decoder and checks it matches.
    private func assertPythonDecodes(_ canvas: Canvas, name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let target = try makeTemporaryDirectory(self, "mlpc-files") + "/\(name).png"
        try canvas.writePNG(to: target)
        let decoded = try FileFixtures.decodeWithPython(target)
        XCTAssertEqual([decoded.width, decoded.height, decoded.channels], [canvas.width, canvas.height, 3], file: file, line: line)
        XCTAssertTrue(decoded.pixels == canvas.pixels, "decoded pixels differ from the canvas", file: file, line: line)
    }

    // MARK: Image grids

    func testSamplesGridPlacesImagesAndTitles() throws {
        let images = Array(repeating: squareDigit(), count: 10)
        let titles = (0..<10).map { "Label: \($0)" }
        let canvas = try samplesGrid(images: images, titles: titles, columns: 8)
        let layout = ImageGridLayout(
            count: 10, imageWidth: 28, imageHeight: 28, titles: titles, columns: 8, imageScale: 3, titleScale: 2)
        XCTAssertEqual([canvas.width, canvas.height], [layout.canvasWidth, layout.canvasHeight])
        XCTAssertEqual(layout.rows, 2)
        try assertPythonDecodes(canvas, name: "samples")

        for index in [0, 7, 9] {
            let origin = layout.imageOrigin(index)
            // Inside the white square (image pixel 11, 9) and in the black background (image pixel 2, 2).
            XCTAssertEqual(canvas.pixel(x: origin.x + 11 * 3 + 1, y: origin.y + 9 * 3 + 1), .white)
            XCTAssertEqual(canvas.pixel(x: origin.x + 2 * 3, y: origin.y + 2 * 3), .black)
            let band = layout.titleBand(index)
            XCTAssertGreaterThan(count(canvas, .black, x: band.x, y: band.y, width: band.width, height: band.height), 40)
        }
        // The title band is above the image and the page between cells is white.
        XCTAssertLessThan(layout.titleBand(0).y + layout.titleBand(0).height, layout.imageOrigin(0).y)
        XCTAssertEqual(canvas.pixel(x: 1, y: 1), .white)
    }

    func testSamplesGridRejectsMismatchedInput() {
        XCTAssertThrowsError(try samplesGrid(images: [squareDigit()], titles: []))
        XCTAssertThrowsError(try samplesGrid(images: [[1, 2, 3]], titles: ["x"]))
        XCTAssertThrowsError(try samplesGrid(images: [], titles: []))
    }

    func testPredictionsGridMarksOnlyMisclassifiedImagesInRed() throws {
        let images = Array(repeating: squareDigit(), count: 3)
        let predicted = [7, 2, 1], truth = [7, 3, 1]
        let canvas = try predictionsGrid(images: images, predicted: predicted, truth: truth, columns: 3)
        let titles = zip(predicted, truth).map { predictionTitle(predicted: $0, truth: $1) }
        XCTAssertEqual(titles[1], "Pred: 2 (True: 3)")
        let layout = ImageGridLayout(
            count: 3, imageWidth: 28, imageHeight: 28, titles: titles, columns: 3, imageScale: 3, titleScale: 1)
        XCTAssertEqual([canvas.width, canvas.height], [layout.canvasWidth, layout.canvasHeight])
        try assertPythonDecodes(canvas, name: "predictions")

        for index in 0..<3 {
            let band = layout.titleBand(index)
            let cell = layout.cellOrigin(index)
            let redTitle = count(canvas, .red, x: band.x, y: band.y, width: band.width, height: band.height)
            let blackTitle = count(canvas, .black, x: band.x, y: band.y, width: band.width, height: band.height)
            let redInCell = count(canvas, .red, x: cell.x, y: cell.y, width: layout.cellWidth, height: layout.cellHeight)
            let origin = layout.imageOrigin(index)
            let frame = canvas.pixel(x: origin.x - ImageGridLayout.framePad, y: origin.y + 40)
            if index == 1 {
                XCTAssertGreaterThan(redTitle, 40)
                XCTAssertEqual(blackTitle, 0)
                XCTAssertEqual(frame, .red)
            } else {
                XCTAssertEqual(redInCell, 0)
                XCTAssertGreaterThan(blackTitle, 40)
                XCTAssertEqual(frame, .white)
            }
        }
    }

    // MARK: Curves

    func testAxisTicksUseNiceSteps() {
        XCTAssertEqual(AxisTicks(minimum: 1, maximum: 100, integerSteps: true).values, [0, 20, 40, 60, 80, 100])
        XCTAssertEqual(AxisTicks(minimum: 1, maximum: 5, integerSteps: true).values, [1, 2, 3, 4, 5])
        XCTAssertEqual(AxisTicks(minimum: 1, maximum: 1, integerSteps: true).values, [1])
        let loss = AxisTicks(minimum: 0.05, maximum: 2.3)
        XCTAssertEqual(loss.step, 0.5)
        XCTAssertEqual(loss.values.map { loss.label($0) }, ["0.0", "0.5", "1.0", "1.5", "2.0"])
        let accuracy = AxisTicks(minimum: 97.1, maximum: 98.4)
        XCTAssertEqual(accuracy.step, 0.2, accuracy: 1e-12)
        XCTAssertEqual(accuracy.values.map { accuracy.label($0) }, ["97.2", "97.4", "97.6", "97.8", "98.0", "98.2", "98.4"])
        XCTAssertLessThanOrEqual(accuracy.lower, 97.1)
        XCTAssertGreaterThanOrEqual(accuracy.upper, 98.4)
        let flat = AxisTicks(minimum: .nan, maximum: .infinity)
        XCTAssertFalse(flat.values.isEmpty)
    }

    func testCurvesDrawEachEpochAtItsPlace() throws {
        let loss = [0.9, 0.5, 0.3, 0.25]
        let accuracy = [91.0, 95.5, 97.0, 97.4]
        let canvas = trainingCurves(loss: loss, accuracy: accuracy)
        XCTAssertEqual([canvas.width, canvas.height], [TrainingCurvesLayout.canvasWidth, TrainingCurvesLayout.canvasHeight])
        try assertPythonDecodes(canvas, name: "curves")
        let lossPanel = TrainingCurvesLayout.panel(0, values: loss)
        let accuracyPanel = TrainingCurvesLayout.panel(1, values: accuracy)
        for (epoch, value) in loss.enumerated() {
            XCTAssertEqual(canvas.pixel(x: lossPanel.canvasX(Double(epoch + 1)), y: lossPanel.canvasY(value)), .blue)
        }
        for (epoch, value) in accuracy.enumerated() {
            XCTAssertEqual(canvas.pixel(x: accuracyPanel.canvasX(Double(epoch + 1)), y: accuracyPanel.canvasY(value)), .orange)
        }
        // Tick labels sit below the x axis: black text under the first tick.
        let tickX = lossPanel.canvasX(1)
        let axisBottom = lossPanel.plotY + lossPanel.plotHeight
        XCTAssertGreaterThan(count(canvas, .black, x: tickX - 3, y: axisBottom + 6, width: 7, height: 10), 3)
        // The axis labels are drawn: some black in the y-label strip at the panel's left edge.
        XCTAssertGreaterThan(
            count(canvas, .black, x: lossPanel.panelX, y: lossPanel.plotY, width: 14, height: lossPanel.plotHeight), 30)
    }

    func testCurvesWorkForOneEpochAndForAHundred() throws {
        let one = trainingCurves(loss: [0.4], accuracy: [91.2])
        let panel = TrainingCurvesLayout.panel(0, values: [0.4])
        XCTAssertEqual(one.pixel(x: panel.canvasX(1), y: panel.canvasY(0.4)), .blue)
        let hundredLoss = (1...100).map { 2.3 / Double($0) }
        let hundredAccuracy = (1...100).map { 100 - 10 / Double($0) }
        let hundred = trainingCurves(loss: hundredLoss, accuracy: hundredAccuracy)
        let wide = TrainingCurvesLayout.panel(0, values: hundredLoss)
        XCTAssertEqual(hundred.pixel(x: wide.canvasX(100), y: wide.canvasY(hundredLoss[99])), .blue)
        XCTAssertEqual(wide.xTicks.values, [0, 20, 40, 60, 80, 100])
    }

    func testCurvesSkipNonFiniteValuesAndEmptyInput() {
        let canvas = trainingCurves(loss: [1, .nan, 0.5, .infinity], accuracy: [])
        let panel = TrainingCurvesLayout.panel(0, values: [1, .nan, 0.5, .infinity])
        XCTAssertEqual(canvas.pixel(x: panel.canvasX(3), y: panel.canvasY(0.5)), .blue)
        XCTAssertEqual(panel.yTicks.values.first.map { $0 <= 0.5 }, true)
    }

    // MARK: Confusion matrix

    func testConfusionMatrixShadesCellsByCountAndPrintsThem() throws {
        let matrix = [[50, 0, 3], [2, 40, 0], [0, 9, 47]]
        let canvas = try confusionMatrixFigure(matrix: matrix, classLabels: ["cat", "dog", "cow"])
        let layout = ConfusionMatrixLayout(matrix: matrix, classLabels: ["cat", "dog", "cow"])
        XCTAssertEqual([canvas.width, canvas.height], [layout.canvasWidth, layout.canvasHeight])
        try assertPythonDecodes(canvas, name: "confusion")
        let darkest = layout.cellOrigin(row: 0, column: 0)
        XCTAssertEqual(canvas.pixel(x: darkest.x + 1, y: darkest.y + 1), ColorMap.blues.color(for: 255))
        let empty = layout.cellOrigin(row: 0, column: 1)
        XCTAssertEqual(canvas.pixel(x: empty.x + 1, y: empty.y + 1), ColorMap.blues.color(for: 0))
        // White digits on the dark diagonal cell, black digits on the pale zero cell.
        let size = layout.cellSize
        XCTAssertGreaterThan(count(canvas, .white, x: darkest.x, y: darkest.y, width: size, height: size), 10)
        XCTAssertGreaterThan(count(canvas, .black, x: empty.x, y: empty.y, width: size, height: size), 5)
        // "predicted" below the grid, "true" left of it.
        let below = layout.gridY + 3 * size
        XCTAssertGreaterThan(count(canvas, .black, x: layout.gridX, y: below + 15, width: 3 * size, height: 15), 20)
        XCTAssertGreaterThan(count(canvas, .black, x: 0, y: layout.gridY, width: 22, height: 3 * size), 10)
    }

    func testConfusionMatrixRejectsBadInput() {
        XCTAssertThrowsError(try confusionMatrixFigure(matrix: []))
        XCTAssertThrowsError(try confusionMatrixFigure(matrix: [[1, 2], [3]]))
        XCTAssertThrowsError(try confusionMatrixFigure(matrix: [[1, -2], [3, 4]]))
        XCTAssertThrowsError(try confusionMatrixFigure(matrix: [[1, 2], [3, 4]], classLabels: ["a"]))
    }

    func testConfusionMatrixWithAllZeroCountsDraws() throws {
        let canvas = try confusionMatrixFigure(matrix: [[0, 0], [0, 0]])
        XCTAssertGreaterThan(canvas.width, 0)
    }
}
