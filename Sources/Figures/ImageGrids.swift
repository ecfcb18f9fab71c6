import Files

// Grids of small gray images with a title above each, like the matplotlib grids of the PyTorch
// quickstart: "Label: 5" for training samples, "Pred: 7 (True: 7)" for predictions, where a wrong
// prediction gets a red title and a red frame so it stands out at a glance.

/// Where each cell of an image grid goes. Cells are laid out row by row; each cell holds a title
/// line, a small gap, then the image scaled by `imageScale`, with room for a frame around it.
public struct ImageGridLayout: Equatable, Sendable {
    public let count: Int
    public let columns: Int
    public let rows: Int
    public let imageWidth: Int
    public let imageHeight: Int
    public let imageScale: Int
    public let titleScale: Int
    public let cellWidth: Int
    public let cellHeight: Int
    public let canvasWidth: Int
    public let canvasHeight: Int

    public static let margin = 10
    public static let gapX = 12
    public static let gapY = 12
    public static let titleGap = 4
    /// Room kept around every image for the frame of a misclassified one.
    public static let framePad = 3
    public static let frameThickness = 2

    public init(count: Int, imageWidth: Int, imageHeight: Int, titles: [String], columns: Int, imageScale: Int, titleScale: Int) {
        self.count = max(0, count)
        self.columns = max(1, min(max(1, columns), self.count))
        rows = (self.count + self.columns - 1) / self.columns
        self.imageWidth = max(0, imageWidth)
        self.imageHeight = max(0, imageHeight)
        self.imageScale = max(1, imageScale)
        let textScale = max(1, titleScale)
        self.titleScale = textScale
        let widestTitle = titles.map { BitmapFont.width(of: $0, scale: textScale) }.max() ?? 0
        cellWidth = max(self.imageWidth * self.imageScale + 2 * Self.framePad, widestTitle + 8)
        cellHeight = BitmapFont.height(scale: self.titleScale) + Self.titleGap + self.imageHeight * self.imageScale + 2 * Self.framePad
        canvasWidth = 2 * Self.margin + self.columns * cellWidth + (self.columns - 1) * Self.gapX
        canvasHeight = 2 * Self.margin + rows * cellHeight + max(0, rows - 1) * Self.gapY
    }

    /// The top-left corner of cell `index`.
    public func cellOrigin(_ index: Int) -> (x: Int, y: Int) {
        let column = index % columns, row = index / columns
        return (Self.margin + column * (cellWidth + Self.gapX), Self.margin + row * (cellHeight + Self.gapY))
    }

    /// The band a cell's title is centred in: the full cell width, one text line high.
    public func titleBand(_ index: Int) -> (x: Int, y: Int, width: Int, height: Int) {
        let origin = cellOrigin(index)
        return (origin.x, origin.y, cellWidth, BitmapFont.height(scale: titleScale))
    }

    /// The top-left corner of cell `index`'s image on the canvas.
    public func imageOrigin(_ index: Int) -> (x: Int, y: Int) {
        let origin = cellOrigin(index)
        let x = origin.x + (cellWidth - imageWidth * imageScale) / 2
        let y = origin.y + BitmapFont.height(scale: titleScale) + Self.titleGap + Self.framePad
        return (x, y)
    }
}

/// One cell of an image grid.
struct ImageGridCell {
    var image: RasterImage
    var title: String
    var titleColor: Color
    var frameColor: Color?
}

/// Turns flat row-major gray images into `RasterImage`s, checking each one's size.
func grayImages(_ images: [[UInt8]], width: Int, height: Int, figure: String) throws -> [RasterImage] {
    guard width > 0, height > 0 else {
        throw FigureError(figure: figure, reason: "image size \(width)x\(height) is empty")
    }
    return try images.enumerated().map { index, pixels in
        guard let image = try? RasterImage(width: width, height: height, format: .gray, pixels: pixels) else {
            throw FigureError(figure: figure, reason: "image \(index) has \(pixels.count) pixels, expected \(width)x\(height) = \(width * height)")
        }
        return image
    }
}

func drawImageGrid(_ cells: [ImageGridCell], layout: ImageGridLayout) -> Canvas {
    var canvas = Canvas(width: layout.canvasWidth, height: layout.canvasHeight, background: .white)
    for (index, cell) in cells.enumerated() {
        let band = layout.titleBand(index)
        let textWidth = BitmapFont.width(of: cell.title, scale: layout.titleScale)
        canvas.drawText(cell.title, x: band.x + (band.width - textWidth) / 2, y: band.y, scale: layout.titleScale, color: cell.titleColor)
        let origin = layout.imageOrigin(index)
        canvas.drawImage(cell.image, x: origin.x, y: origin.y, scale: layout.imageScale, colorMap: .gray)
        if let frame = cell.frameColor {
            let pad = ImageGridLayout.framePad
            canvas.strokeRect(
                x: origin.x - pad, y: origin.y - pad,
                width: layout.imageWidth * layout.imageScale + 2 * pad, height: layout.imageHeight * layout.imageScale + 2 * pad,
                color: frame, thickness: ImageGridLayout.frameThickness)
        }
    }
    return canvas
}

/// A grid of gray images (`imageWidth` x `imageHeight`, row-major, 0 black ... 255 white) each with
/// its title above it, e.g. "Label: 5", `columns` per row.
public func samplesGrid(
    images: [[UInt8]], imageWidth: Int = 28, imageHeight: Int = 28, titles: [String],
    columns: Int = 8, imageScale: Int = 3, titleScale: Int = 2
) throws -> Canvas {
    let figure = "samples grid"
    guard !images.isEmpty else { throw FigureError(figure: figure, reason: "no images") }
    guard titles.count == images.count else {
        throw FigureError(figure: figure, reason: "\(images.count) images but \(titles.count) titles")
    }
    let rasters = try grayImages(images, width: imageWidth, height: imageHeight, figure: figure)
    let layout = ImageGridLayout(
        count: images.count, imageWidth: imageWidth, imageHeight: imageHeight, titles: titles,
        columns: columns, imageScale: imageScale, titleScale: titleScale)
    let cells = zip(rasters, titles).map { ImageGridCell(image: $0, title: $1, titleColor: .black, frameColor: nil) }
    return drawImageGrid(cells, layout: layout)
}

/// The title `predictionsGrid` puts above an image.
public func predictionTitle(predicted: Int, truth: Int) -> String {
    "Pred: \(predicted) (True: \(truth))"
}

/// A grid of gray images titled "Pred: 7 (True: 7)"; a misclassified image (predicted != truth)
/// has its title in red and a red frame around it.
public func predictionsGrid(
    images: [[UInt8]], imageWidth: Int = 28, imageHeight: Int = 28, predicted: [Int], truth: [Int],
    columns: Int = 8, imageScale: Int = 3, titleScale: Int = 1
) throws -> Canvas {
    let figure = "predictions grid"
    guard !images.isEmpty else { throw FigureError(figure: figure, reason: "no images") }
    guard predicted.count == images.count, truth.count == images.count else {
        throw FigureError(
            figure: figure, reason: "\(images.count) images but \(predicted.count) predictions and \(truth.count) true labels")
    }
    let rasters = try grayImages(images, width: imageWidth, height: imageHeight, figure: figure)
    let titles = zip(predicted, truth).map { predictionTitle(predicted: $0, truth: $1) }
    let layout = ImageGridLayout(
        count: images.count, imageWidth: imageWidth, imageHeight: imageHeight, titles: titles,
        columns: columns, imageScale: imageScale, titleScale: titleScale)
    var cells: [ImageGridCell] = []
    for index in rasters.indices {
        let wrong = predicted[index] != truth[index]
        cells.append(
            ImageGridCell(
                image: rasters[index], title: titles[index], titleColor: wrong ? .red : .black,
                frameColor: wrong ? .red : nil))
    }
    return drawImageGrid(cells, layout: layout)
}
