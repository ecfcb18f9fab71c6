import Files
import DataSources
import KernelInterface
import Planner

// Convolution, pooling and batch norm kernels run on the parts the planner gave them (capped by the
// executor's threads), each part a contiguous share of the samples, planes, output channels or
// channels: outputs, never a reduction, so the bits do not depend on the split.

/// Runs `body(first, end, part)` over `parts` contiguous shares of `count` units.
@inline(__always)
func runShares(_ executor: StepExecutor, count: Int, parts: Int, _ body: (Int, Int, Int) -> Void) {
    if parts == 1 {
        body(0, count, 0)
        return
    }
    executor.pool.run(parts: parts) { part in
        let share = partRange(count: count, granule: 1, part: part, parts: parts)
        body(share.lowerBound, share.upperBound, part)
    }
}

extension Conv2dForward {
    func bind(_ b: KernelBinding) -> BoundKernel {
        let x = b.floats(input), w = b.floats(weight), bias = self.bias.map(b.floats), y = b.floats(output)
        let pre = preactivation.map(b.floats)
        let geometry = self.geometry, code = activation.code, slope = activation.negativeSlope, parts = b.parts(self)
        if method == .direct {
            return BoundKernel(isBackward: false) { executor, _, rows in
                let kernels = executor.kernels, ws = executor.workspace, stride = executor.workspaceStride
                runShares(executor, count: rows, parts: parts) { first, end, part in
                    kernels.conv2dForwardDirect(x, w, bias, y, pre, ws + part * stride, geometry, code, slope, first, end)
                }
                return nil
            }
        }
        return BoundKernel(isBackward: false) { executor, _, rows in
            let kernels = executor.kernels, ws = executor.workspace, stride = executor.workspaceStride
            runShares(executor, count: rows, parts: parts) { first, end, part in
                kernels.conv2dForward(x, w, bias, y, pre, ws + part * stride, 0, geometry, code, slope, first, end)
            }
            return nil
        }
    }
}

extension Conv2dBackwardWeights {
    func bind(_ b: KernelBinding) -> BoundKernel {
        let x = b.floats(input), dy = b.floats(outputGradient), dw = b.floats(weightGradient)
        let db = biasGradient.map(b.floats), geometry = self.geometry, parts = b.parts(self)
        if method == .stride1, let layout = Stride1WeightGradientLayout(geometry) {
            // Each part owns its tasks' elements of dw and db.
            return BoundKernel(isBackward: true) { executor, _, rows in
                let kernels = executor.kernels, ws = executor.workspace, stride = executor.workspaceStride
                runShares(executor, count: layout.tasks, parts: parts) { first, end, part in
                    kernels.conv2dBackwardWeightsStride1(x, dy, dw, db, ws + part * stride, rows, geometry, first, end)
                }
                return nil
            }
        }
        return BoundKernel(isBackward: true) { executor, _, rows in
            let kernels = executor.kernels, ws = executor.workspace, stride = executor.workspaceStride
            runShares(executor, count: geometry.patchSize, parts: parts) { first, end, part in
                kernels.conv2dBackwardWeights(x, dy, dw, db, ws + part * stride, rows, geometry, first, end)
            }
            return nil
        }
    }
}

extension Conv2dBackwardInput {
    func bind(_ b: KernelBinding) -> BoundKernel {
        let dy = b.floats(outputGradient), w = b.floats(weight), dx = b.floats(inputGradient)
        let geometry = self.geometry, parts = b.parts(self)
        if method == .sampleLanes {
            // Parts split groups of sixteen samples (the last may be partial).
            return BoundKernel(isBackward: true) { executor, _, rows in
                let kernels = executor.kernels, ws = executor.workspace, stride = executor.workspaceStride
                runShares(executor, count: (rows + 15) / 16, parts: parts) { first, end, part in
                    kernels.conv2dBackwardInputSampleLanes(dy, w, dx, ws + part * stride, geometry, first * 16, min(end * 16, rows))
                }
                return nil
            }
        }
        return BoundKernel(isBackward: true) { executor, _, rows in
            let kernels = executor.kernels, ws = executor.workspace, stride = executor.workspaceStride
            runShares(executor, count: rows, parts: parts) { first, end, part in
                kernels.conv2dBackwardInput(dy, w, dx, ws + part * stride, geometry, first, end)
            }
            return nil
        }
    }
}

extension Pool2dForward {
    func bind(_ b: KernelBinding) -> BoundKernel {
        let x = b.floats(input), y = b.floats(output), indices = self.indices.map(b.int32s)
        let geometry = self.geometry, isMax = kind == .max, parts = b.parts(self)
        return BoundKernel(isBackward: false) { executor, _, rows in
            let kernels = executor.kernels
            runShares(executor, count: rows * geometry.channels, parts: parts) { first, end, _ in
                kernels.pool2dForward(x, y, indices, geometry, isMax, first, end)
            }
            return nil
        }
    }
}

extension Pool2dBackward {
    func bind(_ b: KernelBinding) -> BoundKernel {
        let dy = b.floats(outputGradient), indices = self.indices.map(b.int32s), dx = b.floats(inputGradient)
        let geometry = self.geometry, parts = b.parts(self)
        if let relu = reluValues.map(b.floats), let indices {
            let pooled = reluValuesArePooled
            return BoundKernel(isBackward: true) { executor, _, rows in
                let kernels = executor.kernels
                runShares(executor, count: rows * geometry.channels, parts: parts) { first, end, _ in
                    kernels.maxPool2dReluBackward(dy, indices, relu, pooled, dx, geometry, first, end)
                }
                return nil
            }
        }
        return BoundKernel(isBackward: true) { executor, _, rows in
            let kernels = executor.kernels
            runShares(executor, count: rows * geometry.channels, parts: parts) { first, end, _ in
                kernels.pool2dBackward(dy, indices.map { UnsafePointer($0) }, dx, geometry, first, end)
            }
            return nil
        }
    }
}

extension BatchNormForward {
    func bind(_ b: KernelBinding) -> BoundKernel {
        let x = b.floats(input), y = b.floats(output), weight = self.weight.map(b.floats), bias = self.bias.map(b.floats)
        let runningMean = b.floats(self.runningMean), runningVar = b.floats(self.runningVar), tracked = b.floats(batchesTracked)
        let geometry = self.geometry, parts = b.parts(self)
        guard let savedMean = savedMean.map(b.floats), let savedInvStd = savedInvStd.map(b.floats) else {
            return BoundKernel(isBackward: false) { executor, _, rows in
                let kernels = executor.kernels
                runShares(executor, count: geometry.channels, parts: parts) { first, end, _ in
                    kernels.batchNormEvaluation(x, y, weight, bias, runningMean, runningVar, rows, geometry, first, end)
                }
                return nil
            }
        }
        return BoundKernel(isBackward: false) { executor, _, rows in
            let kernels = executor.kernels
            var geometry = geometry
            // PyTorch's momentum=None: factor 1 / num_batches_tracked, this batch counted.
            if geometry.cumulativeAverage { geometry.momentum = 1 / (tracked[0] + 1) }
            runShares(executor, count: geometry.channels, parts: parts) { first, end, _ in
                kernels.batchNormTraining(x, y, weight, bias, runningMean, runningVar, savedMean, savedInvStd, rows, geometry, first, end)
            }
            tracked[0] += 1
            return nil
        }
    }
}

extension BatchNormBackward {
    func bind(_ b: KernelBinding) -> BoundKernel {
        let dy = b.floats(outputGradient), x = b.floats(input), weight = self.weight.map(b.floats)
        let mean = b.floats(savedMean), invStd = b.floats(savedInvStd), dx = b.floats(inputGradient)
        let dweight = weightGradient.map(b.floats), dbias = biasGradient.map(b.floats)
        let geometry = self.geometry, parts = b.parts(self)
        return BoundKernel(isBackward: true) { executor, _, rows in
            let kernels = executor.kernels
            runShares(executor, count: geometry.channels, parts: parts) { first, end, _ in
                kernels.batchNormBackward(dy, x, weight, mean, invStd, dx, dweight, dbias, rows, geometry, first, end)
            }
            return nil
        }
    }
}
