import KernelInterface
import SpecParser

/// `max_pool2d`, `avg_pool2d` and `adaptive_avg_pool2d` over [C, H, W] per sample: PyTorch's
/// F.max_pool2d (dilation; argmax kept for the backward pass), F.avg_pool2d (count_include_pad either
/// way) and F.adaptive_avg_pool2d (any output size; 1 is global average pooling).
struct Pool2dLayer: PlannedLayer {
    var name: String
    var location: SourceLocation
    var geometry: PoolGeometry
    var kind: PoolingKind

    var outputShape: [Int] { [geometry.channels, geometry.outHeight, geometry.outWidth] }

    static func infer(_ layer: LayerSpec, _ pool: Pool2dSpec, into graph: inout GraphBuilder) -> Bool {
        let kindName = pool.kind == .max ? "max_pool2d" : "avg_pool2d"
        guard let (channels, height, width) = graph.spatialInput(layer, kind: kindName) else { return false }
        let k = pool.kernel.value, s = pool.stride.value, p = pool.padding.value, d = pool.dilation.value
        let outHeight = GraphBuilder.outputSize(
            input: height, padBefore: p.height, padAfter: p.height, kernel: k.height, stride: s.height, dilation: d.height,
            ceilMode: pool.ceilMode.value)
        let outWidth = GraphBuilder.outputSize(
            input: width, padBefore: p.width, padAfter: p.width, kernel: k.width, stride: s.width, dilation: d.width,
            ceilMode: pool.ceilMode.value)
        let spanHeight = d.height * (k.height - 1) + 1, spanWidth = d.width * (k.width - 1) + 1
        if outHeight == nil {
            graph.reportWindowTooLarge(
                layer, kind: kindName, dimension: "height", input: height, padded: height + 2 * p.height, window: spanHeight,
                at: pool.kernel.location)
        }
        if outWidth == nil {
            graph.reportWindowTooLarge(
                layer, kind: kindName, dimension: "width", input: width, padded: width + 2 * p.width, window: spanWidth,
                at: pool.kernel.location)
        }
        guard let outHeight, let outWidth else { return false }
        graph.warnSkippingStride(layer, kind: kindName, stride: s.height, window: spanHeight, dimension: "height", at: pool.stride.location)
        graph.warnSkippingStride(layer, kind: kindName, stride: s.width, window: spanWidth, dimension: "width", at: pool.stride.location)
        let geometry = PoolGeometry(
            channels: channels, inHeight: height, inWidth: width, outHeight: outHeight, outWidth: outWidth, kernelHeight: k.height,
            kernelWidth: k.width, strideHeight: s.height, strideWidth: s.width, padTop: p.height, padLeft: p.width,
            dilationHeight: d.height, dilationWidth: d.width, countIncludePad: pool.countIncludePad.value)
        var summary = "\(kindName) \(k.text)"
        if s != k { summary += " /\(s.text)" }
        if d != .square(1) { summary += " dilation \(d.text)" }
        if !pool.countIncludePad.value { summary += " (padding not counted)" }
        append(layer, geometry: geometry, kind: pool.kind, summary: summary, into: &graph)
        return true
    }

    /// `adaptive_avg_pool2d: [h, w]`: output (i, j) averages rows floor(i * H / h) ..< ceil((i + 1) * H / h)
    /// and the columns alike (1: the whole plane). An output larger than the input repeats input values,
    /// as PyTorch does.
    static func inferAdaptive(_ layer: LayerSpec, outputSize: Located<SpatialPair>, into graph: inout GraphBuilder) -> Bool {
        guard let (channels, height, width) = graph.spatialInput(layer, kind: "adaptive_avg_pool2d") else { return false }
        let out = outputSize.value
        // The largest window, for the cost estimate (the kernel does not read it).
        func largestWindow(_ input: Int, _ output: Int) -> Int {
            (0..<output).map { i in ((i + 1) * input + output - 1) / output - i * input / output }.max() ?? 1
        }
        let geometry = PoolGeometry(
            channels: channels, inHeight: height, inWidth: width, outHeight: out.height, outWidth: out.width,
            kernelHeight: largestWindow(height, out.height), kernelWidth: largestWindow(width, out.width), strideHeight: 1, strideWidth: 1,
            padTop: 0, padLeft: 0, adaptive: true)
        append(layer, geometry: geometry, kind: .average, summary: "adaptive_avg_pool2d \(out.text)", into: &graph)
        return true
    }

    private static func append(_ layer: LayerSpec, geometry: PoolGeometry, kind: PoolingKind, summary: String, into graph: inout GraphBuilder) {
        let pooled = Pool2dLayer(name: layer.name.value, location: layer.location, geometry: geometry, kind: kind)
        graph.shape = pooled.outputShape
        graph.layers.append(pooled)
        graph.summaries.append(LayerSummary(name: pooled.name, kind: summary, outputShape: graph.shape, parameters: 0, location: layer.location))
    }

    var planes: (Int) -> Int { { $0 * geometry.channels } }

    func forward(_ builder: inout PlanBuilder, _ x: Slice, context: inout ForwardContext) -> Slice {
        let batch = builder.batch
        let y = builder.declare("\(name).out", .activation, .float32, shape: [batch] + outputShape)
        var indices: Slice?
        if kind == .max {
            indices = builder.declare("\(name).indices", .poolIndices, .int32, shape: [batch] + outputShape)
            context.saved[context.index] = ["indices": indices!]
        }
        builder.train.append(.pool2dForward(pool(builder, x, y, indices: indices, batch: batch)))
        return y
    }

    func backward(_ builder: inout PlanBuilder, context: inout BackwardContext) {
        context.throughActivation = false
        guard context.needsInputGradient else { return }
        let batch = builder.batch, x = context.input
        let inputGradient = builder.declare("d_\(x.buffer)", .activationGradient, .float32, shape: x.shape)
        builder.train.append(
            .pool2dBackward(
                Pool2dBackward(
                    layer: name, outputGradient: context.gradient, indices: context.forward.saved[context.index]?["indices"],
                    inputGradient: inputGradient, geometry: geometry,
                    threads: builder.threads(flops: batch * geometry.channels * geometry.inPixels * 4, units: batch * geometry.channels),
                    location: location)))
        context.gradient = inputGradient
    }

    func evaluate(_ builder: inout PlanBuilder, _ x: Slice) -> Slice {
        let batch = builder.evalBatch
        let y = builder.declare("eval.\(name).out", .activation, .float32, shape: [batch] + outputShape)
        builder.eval.append(.pool2dForward(pool(builder, x, y, indices: nil, batch: batch)))
        return y
    }

    private func pool(_ builder: PlanBuilder, _ x: Slice, _ y: Slice, indices: Slice?, batch: Int) -> Pool2dForward {
        let flops = batch * geometry.channels * geometry.outPixels * geometry.kernelHeight * geometry.kernelWidth
        return Pool2dForward(
            layer: name, input: builder.view(x, shape: [batch, geometry.channels, geometry.inHeight, geometry.inWidth]), output: y,
            indices: indices, geometry: geometry, kind: kind, threads: builder.threads(flops: flops * 4, units: batch * geometry.channels),
            location: location)
    }
}
