import Files

// Training curves: training loss and test accuracy per epoch, in two panels side by side, each
// with a framed plot area, light grid lines, tick marks with numeric labels at "nice" steps and
// axis labels. Non-finite values (a diverged loss) are left out and break the line.

/// Geometry of one plot panel, public so tests can find the plot area and the ticks.
public struct PlotPanelLayout: Equatable, Sendable {
    /// The left edge of the whole panel (where the y-axis label goes).
    public var panelX: Int
    /// The plot area (inside the frame) on the canvas.
    public var plotX: Int
    public var plotY: Int
    public var plotWidth: Int
    public var plotHeight: Int
    public var xTicks: AxisTicks
    public var yTicks: AxisTicks

    /// The canvas column of the data value `x`.
    public func canvasX(_ x: Double) -> Int {
        let t = (x - xTicks.lower) / (xTicks.upper - xTicks.lower)
        return plotX + Int((t * Double(plotWidth - 1)).rounded())
    }

    /// The canvas row of the data value `y` (up is larger).
    public func canvasY(_ y: Double) -> Int {
        let t = (y - yTicks.lower) / (yTicks.upper - yTicks.lower)
        return plotY + plotHeight - 1 - Int((t * Double(plotHeight - 1)).rounded())
    }
}

/// The fixed geometry of the training-curves figure.
public enum TrainingCurvesLayout {
    public static let panelWidth = 460
    public static let panelHeight = 330
    public static let margin = 12
    public static let titleScale = 2
    public static let titleBandHeight = 7 * titleScale + 14
    public static let canvasWidth = 2 * panelWidth + 3 * margin
    public static let canvasHeight = titleBandHeight + panelHeight + margin

    static let tickLength = 4
    static let labelGap = 4

    /// Where panel `index` (0: loss, 1: accuracy) puts its plot for `values`.
    public static func panel(_ index: Int, values: [Double]) -> PlotPanelLayout {
        let panelX = margin + index * (panelWidth + margin)
        let panelY = titleBandHeight
        let xTicks = AxisTicks(minimum: 1, maximum: Double(max(1, values.count)), targetCount: 6, integerSteps: true)
        let finite = values.filter(\.isFinite)
        let yTicks = AxisTicks(minimum: finite.min() ?? 0, maximum: finite.max() ?? 1, targetCount: 6)
        let widestLabel = yTicks.values.map { BitmapFont.width(of: yTicks.label($0)) }.max() ?? 0
        let left = BitmapFont.glyphHeight + 2 * labelGap + widestLabel + tickLength + labelGap
        let bottom = tickLength + labelGap + BitmapFont.glyphHeight + 2 * labelGap + BitmapFont.glyphHeight + labelGap
        return PlotPanelLayout(
            panelX: panelX, plotX: panelX + left, plotY: panelY + 6, plotWidth: panelWidth - left - 14, plotHeight: panelHeight - bottom - 6,
            xTicks: xTicks, yTicks: yTicks)
    }
}

/// Training loss (left panel, "training loss") and test accuracy in percent (right panel,
/// "test accuracy (%)") per epoch, epochs numbered from 1 on the x axes labelled "epoch".
/// Works for any number of epochs, including none (empty axes) and one (a single point).
/// A regressor passes its test R² as `accuracy`, with `secondLabel` saying so.
public func trainingCurves(
    loss: [Double], accuracy: [Double], title: String = "training curves", secondLabel: String = "test accuracy (%)"
) -> Canvas {
    var canvas = Canvas(width: TrainingCurvesLayout.canvasWidth, height: TrainingCurvesLayout.canvasHeight, background: .white)
    let scale = TrainingCurvesLayout.titleScale
    canvas.drawText(
        title, x: (canvas.width - BitmapFont.width(of: title, scale: scale)) / 2, y: 8, scale: scale, color: .black)
    drawPanel(&canvas, TrainingCurvesLayout.panel(0, values: loss), values: loss, yLabel: "training loss", color: .blue)
    drawPanel(&canvas, TrainingCurvesLayout.panel(1, values: accuracy), values: accuracy, yLabel: secondLabel, color: .orange)
    return canvas
}

private func drawPanel(_ canvas: inout Canvas, _ layout: PlotPanelLayout, values: [Double], yLabel: String, color: Color) {
    drawPlotAxes(&canvas, layout, xLabel: "epoch", yLabel: yLabel)
    // The data: a 2-pixel line through consecutive finite points, and square markers when few.
    var previous: (x: Int, y: Int)?
    let showMarkers = values.count <= 40
    for (index, value) in values.enumerated() {
        guard value.isFinite else { previous = nil; continue }
        let point = (x: layout.canvasX(Double(index + 1)), y: layout.canvasY(value))
        if let previous {
            canvas.drawLine(x0: previous.x, y0: previous.y, x1: point.x, y1: point.y, color: color, thickness: 2)
        }
        if showMarkers || values.count == 1 {
            canvas.fillRect(x: point.x - 2, y: point.y - 2, width: 5, height: 5, color: color)
        }
        previous = point
    }
}

/// A panel's grid, frame, ticks with their labels, and the axis labels.
func drawPlotAxes(_ canvas: inout Canvas, _ layout: PlotPanelLayout, xLabel: String, yLabel: String) {
    let left = layout.plotX, top = layout.plotY
    let right = left + layout.plotWidth - 1, bottom = top + layout.plotHeight - 1
    let tick = TrainingCurvesLayout.tickLength, gap = TrainingCurvesLayout.labelGap
    let textHeight = BitmapFont.glyphHeight

    // Grid lines first, so the frame, ticks and data draw over them.
    for value in layout.xTicks.values {
        let x = layout.canvasX(value)
        canvas.drawLine(x0: x, y0: top, x1: x, y1: bottom, color: .gridGray)
    }
    for value in layout.yTicks.values {
        let y = layout.canvasY(value)
        canvas.drawLine(x0: left, y0: y, x1: right, y1: y, color: .gridGray)
    }
    canvas.strokeRect(x: left - 1, y: top - 1, width: layout.plotWidth + 2, height: layout.plotHeight + 2, color: .axisGray)

    for value in layout.xTicks.values {
        let x = layout.canvasX(value)
        canvas.drawLine(x0: x, y0: bottom + 1, x1: x, y1: bottom + tick, color: .axisGray)
        let label = layout.xTicks.label(value)
        canvas.drawText(label, x: x - BitmapFont.width(of: label) / 2, y: bottom + tick + gap, color: .black)
    }
    for value in layout.yTicks.values {
        let y = layout.canvasY(value)
        canvas.drawLine(x0: left - tick, y0: y, x1: left - 1, y1: y, color: .axisGray)
        let label = layout.yTicks.label(value)
        canvas.drawText(label, x: left - tick - gap - BitmapFont.width(of: label), y: y - textHeight / 2, color: .black)
    }
    canvas.drawText(
        xLabel, x: left + (layout.plotWidth - BitmapFont.width(of: xLabel)) / 2,
        y: bottom + tick + gap + textHeight + 2 * gap, color: .black)
    let yLabelLength = BitmapFont.width(of: yLabel)
    canvas.drawTextRotated(
        yLabel, x: layout.panelX + gap,
        y: top + (layout.plotHeight - yLabelLength) / 2, color: .black)
}
