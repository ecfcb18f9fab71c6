// A regressor's test predictions: predicted against true values (left, with the line y = x where a
// perfect model's points lie) and the residuals, predicted - true, against the predicted values
// (right, with the line 0). One point a row (and target column); non-finite values are left out.

/// Where the two panels of the regression figure put their plots for these values.
public func regressionPanels(predicted: [Double], truth: [Double]) -> (scatter: PlotPanelLayout, residuals: PlotPanelLayout) {
    let pairs = zip(predicted, truth).filter { $0.0.isFinite && $0.1.isFinite }
    let all = pairs.flatMap { [$0.0, $0.1] }
    let low = all.min() ?? 0, high = all.max() ?? 1
    let residuals = pairs.map { $0.0 - $0.1 }
    let bound = max(residuals.map(abs).max() ?? 1, 1e-12)
    func layout(_ index: Int, x: AxisTicks, y: AxisTicks) -> PlotPanelLayout {
        var panel = TrainingCurvesLayout.panel(index, values: [])
        panel.xTicks = x
        panel.yTicks = y
        return panel
    }
    let range = AxisTicks(minimum: low, maximum: high, targetCount: 6)
    return (
        layout(0, x: range, y: range),
        layout(1, x: AxisTicks(minimum: pairs.map(\.0).min() ?? 0, maximum: pairs.map(\.0).max() ?? 1, targetCount: 6),
               y: AxisTicks(minimum: -bound, maximum: bound, targetCount: 6))
    )
}

public func regressionFigure(predicted: [Double], truth: [Double], title: String = "test predictions") -> Canvas {
    var canvas = Canvas(width: TrainingCurvesLayout.canvasWidth, height: TrainingCurvesLayout.canvasHeight, background: .white)
    let scale = TrainingCurvesLayout.titleScale
    canvas.drawText(title, x: (canvas.width - BitmapFont.width(of: title, scale: scale)) / 2, y: 8, scale: scale, color: .black)
    let (scatter, residuals) = regressionPanels(predicted: predicted, truth: truth)
    drawPlotAxes(&canvas, scatter, xLabel: "true value", yLabel: "predicted value")
    drawPlotAxes(&canvas, residuals, xLabel: "predicted value", yLabel: "residual (predicted - true)")
    // The reference lines: y = x, and residual 0.
    let low = max(scatter.xTicks.lower, scatter.yTicks.lower), high = min(scatter.xTicks.upper, scatter.yTicks.upper)
    canvas.drawLine(
        x0: scatter.canvasX(low), y0: scatter.canvasY(low), x1: scatter.canvasX(high), y1: scatter.canvasY(high), color: .axisGray)
    canvas.drawLine(
        x0: residuals.plotX, y0: residuals.canvasY(0), x1: residuals.plotX + residuals.plotWidth - 1, y1: residuals.canvasY(0),
        color: .axisGray)
    for (p, t) in zip(predicted, truth) where p.isFinite && t.isFinite {
        canvas.fillRect(x: scatter.canvasX(t) - 1, y: scatter.canvasY(p) - 1, width: 3, height: 3, color: .blue)
        canvas.fillRect(x: residuals.canvasX(p) - 1, y: residuals.canvasY(p - t) - 1, width: 3, height: 3, color: .orange)
    }
    return canvas
}
