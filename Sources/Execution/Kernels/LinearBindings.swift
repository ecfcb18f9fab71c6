import Files
import DataSources
import KernelInterface
import Planner

// A linear layer's products run on the parts the planner gave them (capped by the executor's threads),
// each part with its own slice of the workspace. The variants the passes chose (the shifted input with
// its zero-input loops, the stored feature order) are fields of the kernel, fixed here.

extension LinearForward {
    func bind(_ b: KernelBinding) -> BoundKernel {
        let x = b.floats(input), w = b.floats(weight), bias = self.bias.map(b.floats), y = b.floats(output)
        let pre = preactivation.map(b.floats)
        let n = product.n, k = product.k, tile = product.tile, parts = b.parts(self)
        let code = activation.code, slope = activation.negativeSlope, ordered = storedFeatureOrder
        if let inputShift {
            let shift = inputShift.shift, skip = inputShift.skipsZeroInputs
            return BoundKernel(isBackward: false) { executor, _, m in
                let kernels = executor.kernels, ws = executor.workspace, stride = executor.workspaceStride
                let order = ordered ? executor.featureOrder?.forwardOrder : nil
                if parts == 1 {
                    kernels.linearForwardShifted(x, w, bias, y, pre, m, n, k, code, slope, tile, ws, 0, 1, order, shift, skip)
                } else {
                    executor.pool.run(parts: parts) { part in
                        kernels.linearForwardShifted(
                            x, w, bias, y, pre, m, n, k, code, slope, tile, ws + part * stride, part, parts, order, shift, skip)
                    }
                }
                return nil
            }
        }
        return BoundKernel(isBackward: false) { executor, _, m in
            let kernels = executor.kernels, ws = executor.workspace, stride = executor.workspaceStride
            let order = ordered ? executor.featureOrder?.forwardOrder : nil
            if parts == 1 {
                kernels.linearForward(x, w, bias, y, pre, m, n, k, code, slope, tile, ws, 0, 1, order)
            } else {
                executor.pool.run(parts: parts) { part in
                    kernels.linearForward(x, w, bias, y, pre, m, n, k, code, slope, tile, ws + part * stride, part, parts, order)
                }
            }
            return nil
        }
    }
}

extension LinearBackwardWeights {
    func bind(_ b: KernelBinding) -> BoundKernel {
        let x = b.floats(input), dy = b.floats(outputGradient), dw = b.floats(weightGradient), db = biasGradient.map(b.floats)
        let inFeatures = product.m, n = product.n, tile = product.tile, parts = b.parts(self), ordered = storedFeatureOrder
        if let inputShift {
            let shift = inputShift.shift, skip = inputShift.skipsZeroInputs
            return BoundKernel(isBackward: true) { executor, _, m in
                let kernels = executor.kernels, ws = executor.workspace, stride = executor.workspaceStride
                let order = ordered ? executor.featureOrder?.kernelOrder : nil
                if parts == 1 {
                    kernels.linearBackwardWeightsShifted(x, dy, dw, db, m, n, inFeatures, tile, ws, 0, 1, order, shift, skip)
                } else {
                    executor.pool.run(parts: parts) { part in
                        kernels.linearBackwardWeightsShifted(
                            x, dy, dw, db, m, n, inFeatures, tile, ws + part * stride, part, parts, order, shift, skip)
                    }
                }
                return nil
            }
        }
        return BoundKernel(isBackward: true) { executor, _, m in
            let kernels = executor.kernels, ws = executor.workspace, stride = executor.workspaceStride
            let order = ordered ? executor.featureOrder?.kernelOrder : nil
            if parts == 1 {
                kernels.linearBackwardWeights(x, dy, dw, db, m, n, inFeatures, tile, ws, 0, 1, order)
            } else {
                executor.pool.run(parts: parts) { part in
                    kernels.linearBackwardWeights(x, dy, dw, db, m, n, inFeatures, tile, ws + part * stride, part, parts, order)
                }
            }
            return nil
        }
    }
}

extension LinearBackwardInput {
    func bind(_ b: KernelBinding) -> BoundKernel {
        let dy = b.floats(outputGradient), w = b.floats(weight), dx = b.floats(inputGradient)
        let producerOutput = b.floats(self.producerOutput), producerPre = producerPreactivation.map(b.floats)
        let code = producerActivation.code, slope = producerActivation.negativeSlope
        // The product is dx[m, in] = dy[m, n] w: its shape is (m, in, n).
        let n = product.k, inFeatures = product.n, tile = product.tile, parts = b.parts(self)
        return BoundKernel(isBackward: true) { executor, _, m in
            let kernels = executor.kernels, ws = executor.workspace, stride = executor.workspaceStride
            if parts == 1 {
                kernels.linearBackwardInput(dy, w, dx, m, n, inFeatures, code, slope, producerOutput, producerPre, tile, ws, 0, 1)
            } else {
                executor.pool.run(parts: parts) { part in
                    kernels.linearBackwardInput(
                        dy, w, dx, m, n, inFeatures, code, slope, producerOutput, producerPre, tile, ws + part * stride, part, parts)
                }
            }
            return nil
        }
    }
}
