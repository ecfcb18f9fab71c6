import SpecParser

/// Shape checks shared by the layers that read [channels, height, width] per sample.
extension GraphBuilder {
    /// The [C, H, W] flowing in, or nil after reporting E0306 at `layer` (what it got, and the fix when
    /// a flatten or linear made it 1-D).
    mutating func spatialInput(_ layer: LayerSpec, kind: String) -> (channels: Int, height: Int, width: Int)? {
        if shape.count == 3 { return (shape[0], shape[1], shape[2]) }
        ok = false
        let got = shape, producer = shapeProducer
        var suggestion: String?
        if got.count == 1 {
            suggestion = "a \(kind) reads [channels, height, width] per sample: keep the flatten and linears after the spatial layers"
        } else if got.count == 2 {
            suggestion = "give model.input_shape as [channels, height, width], e.g. [1, \(got[0]), \(got[1])]"
        }
        diagnostics.append(
            .error(
                "E0306", "\(kind) layer '\(layer.name.value)' needs a [channels, height, width] input per sample, but \(producer) gives \(shapeText(got))",
                at: layer.location, notes: [DiagnosticNote("\(producer) has shape \(shapeText(got)) here", at: shapeLocation)],
                suggestion: suggestion))
        return nil
    }

    /// Output size of one spatial dimension, PyTorch's formula (with ceil_mode's rule that the last
    /// window starts inside the input or its left padding); nil when the window does not fit.
    static func outputSize(
        input: Int, padBefore: Int, padAfter: Int, kernel: Int, stride: Int, dilation: Int, ceilMode: Bool
    ) -> Int? {
        let span = input + padBefore + padAfter - dilation * (kernel - 1) - 1
        guard span >= 0 else { return nil }
        var size = (ceilMode ? span + stride - 1 : span) / stride + 1
        if ceilMode && (size - 1) * stride >= input + padBefore { size -= 1 }
        return size
    }

    /// Reports E0307: the window (kernel x dilation) is larger than the padded input along `dimension`.
    mutating func reportWindowTooLarge(
        _ layer: LayerSpec, kind: String, dimension: String, input: Int, padded: Int, window: Int, at location: SourceLocation
    ) {
        ok = false
        diagnostics.append(
            .error(
                "E0307",
                "\(kind) layer '\(layer.name.value)': its window spans \(window) \(dimension == "height" ? "rows" : "columns") but the padded input has \(padded) (\(dimension) \(input))",
                at: location, notes: [DiagnosticNote("\(shapeProducer) gives \(shapeText(shape))", at: shapeLocation)],
                suggestion: "use a smaller kernel or dilation, more padding, or fewer downsampling layers before '\(layer.name.value)'"))
    }

    /// Warns (W0303) when a stride larger than the window skips input rows or columns entirely.
    mutating func warnSkippingStride(_ layer: LayerSpec, kind: String, stride: Int, window: Int, dimension: String, at location: SourceLocation) {
        guard stride > window else { return }
        diagnostics.append(
            .warning(
                "W0303",
                "\(kind) layer '\(layer.name.value)': stride \(stride) is larger than its window (\(window)), so \(stride - window) of every \(stride) input \(dimension == "height" ? "rows" : "columns") are never read",
                at: location))
    }
}
