/// One instruction set's kernels, as plain function values that point at global functions of a kernel
/// module, so that calling one allocates nothing. All tensors are row-major Float32 behind raw pointers,
/// except a linear layer's weight w (PyTorch's [out, in] = [n, k]) and its gradient, which are in
/// `WeightPanels`' layout.
///
/// Sendable because every member is a global function of a kernel module (nothing is captured).
///
/// Kernels that take `part` and `parts` compute only their share of the output (split by output rows or
/// columns, never by a reduction), so the result is bit-identical for any `parts`; part is in 0..<parts.
public struct KernelSet: @unchecked Sendable {
    /// y[m,n] = act(x[m,k] w[n,k]ᵀ + bias[n]); preact (if not nil) receives x wᵀ + bias. When the columns
    /// of y are split, a part computes the output features `outputFeatureShare` gives it.
    /// Parameters: x, w, bias, y, preact, m, n, k, activation, negativeSlope, tile, workspace, part, parts,
    /// order. `workspace` holds `MatmulTile.workspaceFloats(tile, m: m, n: n, k: k)` floats for this part
    /// (at least n with an order). With an order, w and bias are in its stored order and y and preact
    /// come out in the model's; the order must map each part's `outputFeatureShare` onto itself.
    public typealias LinearForward = (
        UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>?, UnsafeMutablePointer<Float>,
        UnsafeMutablePointer<Float>?, Int, Int, Int, ActivationCode, Float, MatmulTile,
        UnsafeMutablePointer<Float>, Int, Int, FeatureOrder?
    ) -> Void

    /// dx[m,k] = (dy[m,n] w[n,k]) * act'(previous layer), the derivative taken from the previous
    /// layer's output, or from its preactivation for GELU (see `ActivationCode.derivativeNeedsPreactivation`).
    /// Parameters: dy, w, dx, m, n, k, prevActivation, negativeSlope, prevOutput, prevPreact, tile,
    /// workspace, part, parts. The tile and workspace are for the product of shape (m, k, n).
    public typealias LinearBackwardInput = (
        UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int, Int, Int,
        ActivationCode, Float, UnsafePointer<Float>?, UnsafePointer<Float>?, MatmulTile,
        UnsafeMutablePointer<Float>, Int, Int
    ) -> Void

    /// dw[n,k] = (x[m,k]ᵀ dy[m,n])ᵀ (overwrites) and db[n] = sum over m = 0..<m of dy[m,n]. A part computes
    /// the output features `outputFeatureShare` gives it when `splitsByOutputFeature` allows.
    /// Parameters: x, dy, dw, db, m, n, k, tile, workspace, part, parts, order. The tile and workspace are
    /// for the product of shape (k, n, m). With an order (x must then be finite, as a layer's input batch
    /// is): dy is in the model's order, dw and db in the stored order; the order's `live` flags of the
    /// stored columns whose dy is not all zero are set; and register blocks whose dy columns are all zero
    /// store zeros without multiplying.
    public typealias LinearBackwardWeights = (
        UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>?,
        Int, Int, Int, MatmulTile, UnsafeMutablePointer<Float>, Int, Int, FeatureOrder?
    ) -> Void

    /// `LinearForward` for the layer that absorbs its input's normalization shift (the plan's
    /// `shiftedInput`): x holds u = pixel * scale, and y = act(u wᵀ + shift * (w's column sums) + bias).
    /// Two more parameters: shift, and skipZeros (false: always the blocked product; the bits are the
    /// same). The workspace holds `MatmulTile.workspaceFloats` plus `shiftedForwardScratchFloats`.
    public typealias LinearForwardShifted = (
        UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>?, UnsafeMutablePointer<Float>,
        UnsafeMutablePointer<Float>?, Int, Int, Int, ActivationCode, Float, MatmulTile,
        UnsafeMutablePointer<Float>, Int, Int, FeatureOrder?, Float, Bool
    ) -> Void

    /// `LinearBackwardWeights` for that layer: dw = (uᵀ dy)ᵀ + shift * (dy's column sums), the same as
    /// (xᵀ dy)ᵀ up to rounding. Two more parameters: shift and skipZeros. The workspace holds
    /// `MatmulTile.workspaceFloats` (of the shape (k, n, m)) plus `shiftedWeightGradientScratchFloats`.
    public typealias LinearBackwardWeightsShifted = (
        UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>?,
        Int, Int, Int, MatmulTile, UnsafeMutablePointer<Float>, Int, Int, FeatureOrder?, Float, Bool
    ) -> Void

    /// y = act(x). Parameters: x, y, count, activation, negativeSlope, part, parts. x and y may alias.
    public typealias ActivationForward = (
        UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int, ActivationCode, Float, Int, Int
    ) -> Void

    /// dx = dy * act'. Parameters: dy, preact, output, dx, count, activation, negativeSlope, part, parts.
    /// The derivative is taken from `output`, or from `preact` for GELU; the other may be nil. dx may
    /// alias dy.
    public typealias ActivationBackward = (
        UnsafePointer<Float>, UnsafePointer<Float>?, UnsafePointer<Float>?, UnsafeMutablePointer<Float>,
        Int, ActivationCode, Float, Int, Int
    ) -> Void

    /// Inverted dropout. Parameters: x, y, mask, count, p, seed, step, part, parts. mask[i] is 0 or
    /// 1/(1-p); the choice is a hash of (seed, step, i), so independent of the split. x and y may alias.
    public typealias DropoutForward = (
        UnsafePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, Int, Float,
        UInt64, UInt64, Int, Int
    ) -> Void

    /// dx = dy * mask. Parameters: dy, mask, dx, count, part, parts. dx may alias dy.
    public typealias DropoutBackward = (
        UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int, Int, Int
    ) -> Void

    /// Mean cross-entropy of softmax(logits) against labels; writes dlogits = (softmax - onehot) / m.
    /// Parameters: logits, labels, m, n, dlogits, rowLoss (m floats of scratch). A label outside
    /// 0..<n makes its row's loss NaN (the data loader rejects such labels before they get here).
    public typealias SoftmaxCrossEntropy = (
        UnsafePointer<Float>, UnsafePointer<Int32>, Int, Int, UnsafeMutablePointer<Float>,
        UnsafeMutablePointer<Float>
    ) -> Float

    /// Mean over m*n of (output - onehot(label))^2; doutput = 2 (output - target) / (m n).
    /// Parameters: output, labels, m, n, doutput.
    public typealias MeanSquaredError = (
        UnsafePointer<Float>, UnsafePointer<Int32>, Int, Int, UnsafeMutablePointer<Float>
    ) -> Float

    /// torch.optim.SGD, one step. Parameters: params, grads, momentumBuffer (unused when momentum is 0),
    /// count, lr, momentum, dampening, nesterov, weightDecay, isFirstStep, part, parts.
    public typealias SGDStep = (
        UnsafeMutablePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>?, Int,
        Double, Double, Double, Bool, Double, Bool, Int, Int
    ) -> Void

    /// torch.optim.Adam (decoupled = false) or AdamW (decoupled = true), one step.
    /// Parameters: params, grads, m, v, count, lr, beta1, beta2, eps, weightDecay, decoupled, step
    /// (1-based), part, parts.
    public typealias AdamStep = (
        UnsafeMutablePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>,
        UnsafeMutablePointer<Float>, Int, Double, Double, Double, Double, Double, Bool, Int, Int, Int
    ) -> Void

    /// Fills a batch: row r of `out` is example `indices[r]` of the uint8 `images`, each byte x mapped to
    /// x * scale + shift (a product, then a sum), and labelsOut[r] = labels[indices[r]]. Parameters:
    /// images, labels, featureCount, indices, count, scale, shift, out, labelsOut, part, parts. Every
    /// index must be in range; they come from a permutation the runtime made, never from a file.
    public typealias GatherRows = (
        UnsafePointer<UInt8>, UnsafePointer<Int32>, Int, UnsafePointer<Int32>, Int, Float, Float,
        UnsafeMutablePointer<Float>, UnsafeMutablePointer<Int32>, Int, Int
    ) -> Void

    /// `GatherRows` for float32 samples: each value x becomes x * scale + shift (a product, then a sum).
    public typealias GatherFloatRows = (
        UnsafePointer<Float>, UnsafePointer<Int32>, Int, UnsafePointer<Int32>, Int, Float, Float,
        UnsafeMutablePointer<Float>, UnsafeMutablePointer<Int32>, Int, Int
    ) -> Void

    /// out[i] = index of the largest logit of row i (the first one on ties). Parameters: logits, m, n, out.
    public typealias ArgmaxRows = (UnsafePointer<Float>, Int, Int, UnsafeMutablePointer<Int32>) -> Void

    /// probabilities = softmax of each row. Parameters: logits, m, n, probabilities (may alias logits).
    public typealias SoftmaxRows = (UnsafePointer<Float>, Int, Int, UnsafeMutablePointer<Float>) -> Void

    /// 2-D convolution (`ConvGeometry`), samples [first, end) of the batch: y = act(conv(x, w) + bias),
    /// preact (if not nil) receiving conv(x, w) + bias. Parameters: x, w, bias, y, preact, columns,
    /// columnStride, geometry, activation, negativeSlope, first, end. Each sample's column matrices
    /// (im2col) are built at columns + sample * columnStride (columnStride 0: one scratch reused, of
    /// `geometry.columnFloats` floats).
    public typealias Conv2dForward = (
        UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>?, UnsafeMutablePointer<Float>,
        UnsafeMutablePointer<Float>?, UnsafeMutablePointer<Float>, Int, ConvGeometry, ActivationCode, Float, Int, Int
    ) -> Void

    /// dw[oc, i] = sum over samples and positions of dy[n, oc, p] * im2col(x)[n, group, i, p], for patch
    /// rows i in [first, end) and every output channel (overwritten); db[oc] = sum of dy[n, oc, :] by the
    /// part whose range starts at 0. Parameters: x, dy, dw, db, scratch
    /// (`geometry.weightGradientScratchFloats(rows: end - first)` floats), rows, geometry, first, end.
    public typealias Conv2dBackwardWeights = (
        UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>?,
        UnsafeMutablePointer<Float>, Int, ConvGeometry, Int, Int
    ) -> Void

    /// The same gradients for a stride-1 convolution (`Stride1WeightGradientLayout`), for tasks [first, end)
    /// of the layout (each owns its elements of dw, and of db when not nil). Parameters: x, dy, dw, db,
    /// scratch (`Stride1WeightGradientLayout.scratchFloats` floats), rows, geometry, first, end.
    public typealias Conv2dBackwardWeightsStride1 = (
        UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>?,
        UnsafeMutablePointer<Float>, Int, ConvGeometry, Int, Int
    ) -> Void

    /// dx = the convolution's transpose applied to dy, for samples [first, end) (overwritten).
    /// Parameters: dy, w, dx, scratch (`geometry.patchSize * geometry.outPixels` floats), geometry,
    /// first, end.
    public typealias Conv2dBackwardInput = (
        UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>,
        ConvGeometry, Int, Int
    ) -> Void

    /// The direct stride-1, dilation-1 convolution (`ConvGeometry.allowsDirect`): the same result and
    /// bits as `Conv2dForward`, from row-shifted copies of each sample's input instead of im2col.
    /// Parameters: x, w, bias, y, preact, scratch (`geometry.shiftedRowFloats` floats), geometry,
    /// activation, negativeSlope, first, end.
    public typealias Conv2dForwardDirect = (
        UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>?, UnsafeMutablePointer<Float>,
        UnsafeMutablePointer<Float>?, UnsafeMutablePointer<Float>, ConvGeometry, ActivationCode, Float, Int, Int
    ) -> Void

    /// dx for a convolution that `ConvGeometry.allowsDirect`, with sixteen samples in the vector lanes
    /// and only the taps inside dy, for samples [first, end) (overwritten). Parameters: dy, w, dx,
    /// scratch (`geometry.sampleLaneInputGradientFloats` floats), geometry, first, end.
    public typealias Conv2dBackwardInputSampleLanes = (
        UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>,
        ConvGeometry, Int, Int
    ) -> Void

    /// Pooling (`PoolGeometry`) of planes [first, end) (a plane is one channel of one sample). Max:
    /// indices (not nil) receive each output's argmax within its input plane (the first on ties);
    /// average: sum / window size, padding counted. Parameters: x, y, indices, geometry, isMax, first, end.
    public typealias Pool2dForward = (
        UnsafePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Int32>?, PoolGeometry, Bool, Int, Int
    ) -> Void

    /// The gradient of `Pool2dForward` for planes [first, end) (dx overwritten). Parameters: dy,
    /// indices (max) or nil (average), dx, geometry, first, end.
    public typealias Pool2dBackward = (
        UnsafePointer<Float>, UnsafePointer<Int32>?, UnsafeMutablePointer<Float>, PoolGeometry, Int, Int
    ) -> Void

    /// `Pool2dBackward` of a max pool followed by the backward pass of the ReLU whose output the pool
    /// read, planes [first, end) (dx overwritten): dx = pool gradient x (ReLU output > 0 ? 1 : 0).
    /// Parameters: dy, indices, the ReLU output or (pooled true, 2x2 windows inside the input) the
    /// pool's output, pooled, dx, geometry, first, end.
    public typealias MaxPool2dReluBackward = (
        UnsafePointer<Float>, UnsafePointer<Int32>, UnsafePointer<Float>, Bool, UnsafeMutablePointer<Float>, PoolGeometry, Int, Int
    ) -> Void

    /// Batch normalization in training, channels [first, end): the batch's mean and biased variance per
    /// channel normalize x; y = xhat * weight + bias (weight and bias nil: 1 and 0). savedMean and
    /// savedInvStd receive the mean and 1 / sqrt(var + eps); runningMean and runningVar move by the
    /// momentum towards the mean and the unbiased variance. Parameters: x, y, weight, bias, runningMean,
    /// runningVar, savedMean, savedInvStd, rows, geometry, first, end.
    public typealias BatchNormTraining = (
        UnsafePointer<Float>, UnsafeMutablePointer<Float>, UnsafePointer<Float>?, UnsafePointer<Float>?,
        UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>,
        UnsafeMutablePointer<Float>, Int, BatchNormGeometry, Int, Int
    ) -> Void

    /// Batch normalization in evaluation, channels [first, end): y = (x - runningMean) / sqrt(runningVar
    /// + eps) * weight + bias. Parameters: x, y, weight, bias, runningMean, runningVar, rows, geometry,
    /// first, end.
    public typealias BatchNormEvaluation = (
        UnsafePointer<Float>, UnsafeMutablePointer<Float>, UnsafePointer<Float>?, UnsafePointer<Float>?,
        UnsafePointer<Float>, UnsafePointer<Float>, Int, BatchNormGeometry, Int, Int
    ) -> Void

    /// The gradient of `BatchNormTraining`, channels [first, end): dx (overwritten; may alias dy), and
    /// dweight and dbias when not nil. Parameters: dy, x, weight, savedMean, savedInvStd, dx, dweight,
    /// dbias, rows, geometry, first, end.
    public typealias BatchNormBackward = (
        UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>?, UnsafePointer<Float>, UnsafePointer<Float>,
        UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>?, UnsafeMutablePointer<Float>?, Int,
        BatchNormGeometry, Int, Int
    ) -> Void
    /// An evaluation batch norm folded into the layer before it: with scale = weight / sqrt(runningVar +
    /// eps) (as `BatchNormEvaluation` computes it), foldedWeight = layerWeight x scale per output channel and
    /// foldedBias = (layerBias - runningMean) x scale + bias (nil weights and biases: 1 and 0). Parameters:
    /// layerWeight, layerBias, weight, bias, runningMean, runningVar, foldedWeight, foldedBias, layout, eps.
    public typealias BatchNormFold = (
        UnsafePointer<Float>, UnsafePointer<Float>?, UnsafePointer<Float>?, UnsafePointer<Float>?, UnsafePointer<Float>,
        UnsafePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, FoldedWeightLayout, Float
    ) -> Void
    /// A regressor's loss and its gradient; returns the mean. Parameters: kind (0 mse, 1 l1, 2 huber),
    /// huber's delta, output, targets, m, n, d_output.
    public typealias RegressionLoss = (Int, Float, UnsafePointer<Float>, UnsafePointer<Float>, Int, Int, UnsafeMutablePointer<Float>) -> Float

    /// Copies the target rows named by indices. Parameters: targets, width, indices, count, out, part, parts.
    public typealias GatherTargetRows = (UnsafePointer<Float>, Int, UnsafePointer<Int32>, Int, UnsafeMutablePointer<Float>, Int, Int) -> Void

    public var isa: KernelISA
    public var gatherRows: GatherRows
    public var gatherFloatRows: GatherFloatRows
    public var linearForward: LinearForward
    public var linearBackwardInput: LinearBackwardInput
    public var linearBackwardWeights: LinearBackwardWeights
    public var linearForwardShifted: LinearForwardShifted
    public var linearBackwardWeightsShifted: LinearBackwardWeightsShifted
    public var activationForward: ActivationForward
    public var activationBackward: ActivationBackward
    public var dropoutForward: DropoutForward
    public var dropoutBackward: DropoutBackward
    public var softmaxCrossEntropy: SoftmaxCrossEntropy
    public var meanSquaredError: MeanSquaredError
    public var sgdStep: SGDStep
    public var adamStep: AdamStep
    public var argmaxRows: ArgmaxRows
    public var softmaxRows: SoftmaxRows
    public var conv2dForward: Conv2dForward
    public var conv2dBackwardWeights: Conv2dBackwardWeights
    public var conv2dBackwardWeightsStride1: Conv2dBackwardWeightsStride1
    public var conv2dBackwardInput: Conv2dBackwardInput
    public var conv2dForwardDirect: Conv2dForwardDirect
    public var conv2dBackwardInputSampleLanes: Conv2dBackwardInputSampleLanes
    public var pool2dForward: Pool2dForward
    public var pool2dBackward: Pool2dBackward
    public var maxPool2dReluBackward: MaxPool2dReluBackward
    public var batchNormTraining: BatchNormTraining
    public var batchNormEvaluation: BatchNormEvaluation
    public var batchNormBackward: BatchNormBackward
    public var batchNormFold: BatchNormFold
    public var regressionLoss: RegressionLoss
    public var gatherTargetRows: GatherTargetRows

    public init(
        isa: KernelISA,
        gatherRows: @escaping GatherRows,
        gatherFloatRows: @escaping GatherFloatRows,
        linearForward: @escaping LinearForward,
        linearBackwardInput: @escaping LinearBackwardInput,
        linearBackwardWeights: @escaping LinearBackwardWeights,
        linearForwardShifted: @escaping LinearForwardShifted,
        linearBackwardWeightsShifted: @escaping LinearBackwardWeightsShifted,
        activationForward: @escaping ActivationForward,
        activationBackward: @escaping ActivationBackward,
        dropoutForward: @escaping DropoutForward,
        dropoutBackward: @escaping DropoutBackward,
        softmaxCrossEntropy: @escaping SoftmaxCrossEntropy,
        meanSquaredError: @escaping MeanSquaredError,
        sgdStep: @escaping SGDStep,
        adamStep: @escaping AdamStep,
        argmaxRows: @escaping ArgmaxRows,
        softmaxRows: @escaping SoftmaxRows,
        conv2dForward: @escaping Conv2dForward,
        conv2dBackwardWeights: @escaping Conv2dBackwardWeights,
        conv2dBackwardWeightsStride1: @escaping Conv2dBackwardWeightsStride1,
        conv2dBackwardInput: @escaping Conv2dBackwardInput,
        conv2dForwardDirect: @escaping Conv2dForwardDirect,
        conv2dBackwardInputSampleLanes: @escaping Conv2dBackwardInputSampleLanes,
        pool2dForward: @escaping Pool2dForward,
        pool2dBackward: @escaping Pool2dBackward,
        maxPool2dReluBackward: @escaping MaxPool2dReluBackward,
        batchNormTraining: @escaping BatchNormTraining,
        batchNormEvaluation: @escaping BatchNormEvaluation,
        batchNormBackward: @escaping BatchNormBackward,
        batchNormFold: @escaping BatchNormFold,
        regressionLoss: @escaping RegressionLoss,
        gatherTargetRows: @escaping GatherTargetRows
    ) {
        self.regressionLoss = regressionLoss
        self.gatherTargetRows = gatherTargetRows
        self.isa = isa
        self.gatherRows = gatherRows
        self.gatherFloatRows = gatherFloatRows
        self.linearForward = linearForward
        self.linearBackwardInput = linearBackwardInput
        self.linearBackwardWeights = linearBackwardWeights
        self.linearForwardShifted = linearForwardShifted
        self.linearBackwardWeightsShifted = linearBackwardWeightsShifted
        self.activationForward = activationForward
        self.activationBackward = activationBackward
        self.dropoutForward = dropoutForward
        self.dropoutBackward = dropoutBackward
        self.softmaxCrossEntropy = softmaxCrossEntropy
        self.meanSquaredError = meanSquaredError
        self.sgdStep = sgdStep
        self.adamStep = adamStep
        self.argmaxRows = argmaxRows
        self.softmaxRows = softmaxRows
        self.conv2dForward = conv2dForward
        self.conv2dBackwardWeights = conv2dBackwardWeights
        self.conv2dBackwardWeightsStride1 = conv2dBackwardWeightsStride1
        self.conv2dBackwardInput = conv2dBackwardInput
        self.conv2dForwardDirect = conv2dForwardDirect
        self.conv2dBackwardInputSampleLanes = conv2dBackwardInputSampleLanes
        self.pool2dForward = pool2dForward
        self.pool2dBackward = pool2dBackward
        self.maxPool2dReluBackward = maxPool2dReluBackward
        self.batchNormTraining = batchNormTraining
        self.batchNormEvaluation = batchNormEvaluation
        self.batchNormBackward = batchNormBackward
        self.batchNormFold = batchNormFold
    }
}

/// The contiguous share [start, end) of `count` items that part `part` of `parts` owns, in units of
/// `granule` items (so vector loops see whole vectors except at the very end). Empty when the part is
/// out of range or has nothing left.
public func partRange(count: Int, granule: Int, part: Int, parts: Int) -> Range<Int> {
    guard count > 0, parts > 0, part >= 0, part < parts else { return 0..<0 }
    let g = max(granule, 1)
    let units = (count + g - 1) / g
    let base = units / parts, extra = units % parts
    let startUnit = part * base + min(part, extra)
    let endUnit = startUnit + base + (part < extra ? 1 : 0)
    return min(startUnit * g, count)..<min(endUnit * g, count)
}

