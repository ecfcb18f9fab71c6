import Foundation

// The four pictures a finished run leaves in its directory, as the PyTorch quickstart draws them with
// matplotlib: a grid of the first training batch, the first test images with their predictions, the
// training curves and the confusion matrix.

public enum RunPictureName {
    public static let samples = "samples.png"
    public static let predictions = "predictions.png"
    public static let curves = "curves.png"
    public static let confusion = "confusion.png"
}

/// How many images the sample and prediction grids show at most (the tutorial's 64-image batch).
public let runPictureGridLimit = 64

/// Writes samples.png, predictions.png, curves.png and confusion.png into `directory`.
/// `firstBatch` are the training rows of the first batch of epoch 1; `predictions` are the final
/// predictions for the test images in order.
public func writeRunPictures(
    directory: String, train: LabeledImages, firstBatch: [Int32], test: LabeledImages, predictions: [Int32],
    metrics: [EpochMetrics], confusion: [[Int]]
) throws {
    let size = train.imageSize
    let samples = firstBatch.prefix(runPictureGridLimit).map { Int($0) }.filter { $0 < train.count }
    if !samples.isEmpty {
        let grid = try samplesGrid(
            images: samples.map { train.image(at: $0) }, imageWidth: size.width, imageHeight: size.height,
            titles: samples.map { "Label: \(train.labels[$0])" })
        try grid.writePNG(to: directory + "/" + RunPictureName.samples)
    }
    let shown = min(runPictureGridLimit, test.count, predictions.count)
    if shown > 0 {
        let grid = try predictionsGrid(
            images: (0..<shown).map { test.image(at: $0) }, imageWidth: size.width, imageHeight: size.height,
            predicted: predictions.prefix(shown).map { Int($0) }, truth: (0..<shown).map { Int(test.labels[$0]) })
        try grid.writePNG(to: directory + "/" + RunPictureName.predictions)
    }
    try trainingCurves(loss: metrics.map(\.meanLoss), accuracy: metrics.map(\.testAccuracy))
        .writePNG(to: directory + "/" + RunPictureName.curves)
    try confusionMatrixFigure(matrix: confusion).writePNG(to: directory + "/" + RunPictureName.confusion)
}
