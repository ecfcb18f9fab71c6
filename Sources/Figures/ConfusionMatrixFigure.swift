import Files

// A confusion matrix as a heat map: row = true class, column = predicted class, each cell shaded
// by its count (matplotlib's "Blues", scaled to the largest count) with the count printed in it,
// as scikit-learn's ConfusionMatrixDisplay draws it.

/// Geometry of the confusion matrix figure, public so tests can find cells.
public struct ConfusionMatrixLayout: Equatable, Sendable {
    public let classCount: Int
    public let cellSize: Int
    public let gridX: Int
    public let gridY: Int
    public let canvasWidth: Int
    public let canvasHeight: Int

    public static let margin = 12
    public static let titleScale = 2
    public static let titleBandHeight = 7 * titleScale + 16
    static let gap = 6

    public init(matrix: [[Int]], classLabels: [String]) {
        classCount = matrix.count
        let widestCount = matrix.flatMap { $0 }.map { BitmapFont.width(of: String($0)) }.max() ?? 0
        let widestLabel = classLabels.map { BitmapFont.width(of: $0) }.max() ?? 0
        cellSize = max(30, widestCount + 10, widestLabel + 6)
        gridX = Self.margin + BitmapFont.glyphHeight + 2 * Self.gap + widestLabel
        gridY = Self.titleBandHeight
        let gridSize = classCount * cellSize
        let titleWidth = BitmapFont.width(of: "confusion matrix", scale: Self.titleScale)
        canvasWidth = max(gridX + gridSize + Self.margin, titleWidth + 2 * Self.margin)
        canvasHeight = gridY + gridSize + Self.gap + BitmapFont.glyphHeight + 2 * Self.gap + BitmapFont.glyphHeight + Self.margin
    }

    /// The top-left corner of the cell for true class `row`, predicted class `column`.
    public func cellOrigin(row: Int, column: Int) -> (x: Int, y: Int) {
        (gridX + column * cellSize, gridY + row * cellSize)
    }
}

/// A heat map of `matrix` (n x n, `matrix[true][predicted]` = count) with counts printed in the
/// cells, class labels along both axes ("predicted" below, "true" at the left) and a title. Empty
/// `classLabels` means "0", "1", ...; otherwise there must be one per class.
public func confusionMatrixFigure(matrix: [[Int]], classLabels: [String] = [], title: String = "confusion matrix") throws -> Canvas {
    let figure = "confusion matrix"
    let n = matrix.count
    guard n > 0 else { throw FigureError(figure: figure, reason: "the matrix is empty") }
    for (index, row) in matrix.enumerated() where row.count != n {
        throw FigureError(figure: figure, reason: "row \(index) has \(row.count) entries; the matrix must be \(n) x \(n)")
    }
    if let negative = matrix.flatMap({ $0 }).first(where: { $0 < 0 }) {
        throw FigureError(figure: figure, reason: "count \(negative) is negative")
    }
    let labels = classLabels.isEmpty ? (0..<n).map(String.init) : classLabels
    guard labels.count == n else {
        throw FigureError(figure: figure, reason: "\(labels.count) class labels for \(n) classes")
    }

    let layout = ConfusionMatrixLayout(matrix: matrix, classLabels: labels)
    var canvas = Canvas(width: layout.canvasWidth, height: layout.canvasHeight, background: .white)
    let scale = ConfusionMatrixLayout.titleScale
    canvas.drawText(title, x: (canvas.width - BitmapFont.width(of: title, scale: scale)) / 2, y: 8, scale: scale)

    let largest = max(1, matrix.flatMap { $0 }.max() ?? 1)
    let cell = layout.cellSize
    let textHeight = BitmapFont.glyphHeight
    for row in 0..<n {
        for column in 0..<n {
            let count = matrix[row][column]
            let level = UInt8((Double(count) / Double(largest) * 255).rounded())
            let fill = ColorMap.blues.color(for: level)
            let origin = layout.cellOrigin(row: row, column: column)
            canvas.fillRect(x: origin.x, y: origin.y, width: cell, height: cell, color: fill)
            let text = String(count)
            canvas.drawText(
                text, x: origin.x + (cell - BitmapFont.width(of: text)) / 2, y: origin.y + (cell - textHeight) / 2,
                color: fill.luma < 128 ? .white : .black)
        }
    }
    let gridSize = n * cell
    canvas.strokeRect(x: layout.gridX - 1, y: layout.gridY - 1, width: gridSize + 2, height: gridSize + 2, color: .axisGray)

    let gap = ConfusionMatrixLayout.gap
    for (index, label) in labels.enumerated() {
        let columnX = layout.gridX + index * cell + (cell - BitmapFont.width(of: label)) / 2
        canvas.drawText(label, x: columnX, y: layout.gridY + gridSize + gap)
        let rowY = layout.gridY + index * cell + (cell - textHeight) / 2
        canvas.drawText(label, x: layout.gridX - gap - BitmapFont.width(of: label), y: rowY)
    }
    let predicted = "predicted"
    canvas.drawText(
        predicted, x: layout.gridX + (gridSize - BitmapFont.width(of: predicted)) / 2,
        y: layout.gridY + gridSize + gap + textHeight + gap)
    let truth = "true"
    canvas.drawTextRotated(
        truth, x: ConfusionMatrixLayout.margin, y: layout.gridY + (gridSize - BitmapFont.width(of: truth)) / 2)
    return canvas
}
