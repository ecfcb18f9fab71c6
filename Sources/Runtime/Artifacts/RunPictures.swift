import Figures
import Files
import DataSources
import Execution
import Foundation

// The four pictures a finished run leaves in its directory, as the PyTorch quickstart draws them with
// matplotlib: a grid of the first training batch, the first test images with their predictions, the
// training curves and the confusion matrix.

public enum RunPictureName {
    public static let samples = "samples.png"
    public static let predictions = "predictions.png"
    public static let curves = "curves.png"
    public static let confusion = "confusion.png"
    /// A regressor's predicted-versus-true and residual plots (in place of the confusion matrix).
    public static let regression = "regression.png"
}

/// How many images the sample and prediction grids show at most (the tutorial's 64-image batch).
public let runPictureGridLimit = 64

/// Writes samples.png, predictions.png, curves.png and confusion.png into `directory`.
/// `firstBatch` are the training rows of the first batch of epoch 1; `predictions` are the final
/// predictions for the test images in order.
///
/// The two image grids take most of the time (drawing and deflating, about 17 ms each): samples and the
/// curves are drawn on a second thread while this one draws predictions and the confusion matrix. Each
/// file is written whole or not at all; when some fail, the error is the first failure in the order the
/// files are listed above, as if they had been written one after the other (the others may exist).
public func writeRunPictures(
    directory: String, train: any Dataset, firstBatch: [Int32], test: any Dataset, predictions: [Int32],
    metrics: [EpochMetrics], confusion: [[Int]], regression: (predicted: [Double], truth: [Double])? = nil,
    classNames: [String] = []
) throws {
    let size = train.imageSize
    // The grids draw samples that are images of bytes with class labels.
    let drawable = { (data: any Dataset) in data.samples.element == .uint8 && data.classIndex(at: 0) != nil }
    let samples = drawable(train) ? firstBatch.prefix(runPictureGridLimit).map { Int($0) }.filter { $0 < train.count } : []
    let shown = drawable(test) ? min(runPictureGridLimit, test.count, predictions.count) : 0
    let (samplesAndCurves, predictionsAndConfusion) = runConcurrently(
        {
            RunPictureResults(
                first: Result {
                    guard !samples.isEmpty else { return }
                    let grid = try samplesGrid(
                        images: samples.map { train.pixels(at: $0)! }, imageWidth: size.width, imageHeight: size.height,
                        titles: samples.map { "Label: \(train.classIndex(at: $0)!)" })
                    try grid.writePNG(to: directory + "/" + RunPictureName.samples)
                },
                second: Result {
                    let curves = regression == nil
                        ? trainingCurves(loss: metrics.map(\.meanLoss), accuracy: metrics.map(\.testAccuracy))
                        : trainingCurves(loss: metrics.map(\.meanLoss), accuracy: metrics.map { $0.regression?.r2 ?? .nan }, secondLabel: "test R2")
                    try curves.writePNG(to: directory + "/" + RunPictureName.curves)
                })
        },
        {
            RunPictureResults(
                first: Result {
                    guard shown > 0 else { return }
                    let grid = try predictionsGrid(
                        images: (0..<shown).map { test.pixels(at: $0)! }, imageWidth: size.width, imageHeight: size.height,
                        predicted: predictions.prefix(shown).map { Int($0) }, truth: (0..<shown).map { test.classIndex(at: $0)! })
                    try grid.writePNG(to: directory + "/" + RunPictureName.predictions)
                },
                second: Result {
                    if let regression {
                        try regressionFigure(predicted: regression.predicted, truth: regression.truth)
                            .writePNG(to: directory + "/" + RunPictureName.regression)
                    } else {
                        try confusionMatrixFigure(matrix: confusion, classLabels: classNames)
                            .writePNG(to: directory + "/" + RunPictureName.confusion)
                    }
                })
        })
    // samples, predictions, curves, confusion: the order of the listing.
    for result in [samplesAndCurves.first, predictionsAndConfusion.first, samplesAndCurves.second, predictionsAndConfusion.second] {
        try result.get()
    }
}

/// What one thread's two pictures came to.
private struct RunPictureResults {
    var first: Result<Void, Error>
    var second: Result<Void, Error>
}
