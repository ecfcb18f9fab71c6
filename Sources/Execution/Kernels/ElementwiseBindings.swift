import Files
import DataSources
import Planner

extension ActivationForward {
    func bind(_ b: KernelBinding) -> BoundKernel {
        let x = b.floats(input), y = b.floats(output), width = b.width(input)
        let code = activation.code, slope = activation.negativeSlope
        return BoundKernel(isBackward: false) { executor, _, rows in
            executor.kernels.activationForward(x, y, rows * width, code, slope, 0, 1)
            return nil
        }
    }
}

extension ActivationBackward {
    func bind(_ b: KernelBinding) -> BoundKernel {
        let dy = b.floats(outputGradient), pre = preactivation.map(b.floats), out = b.floats(output), dx = b.floats(inputGradient)
        let width = b.width(outputGradient), code = activation.code, slope = activation.negativeSlope
        return BoundKernel(isBackward: true) { executor, _, rows in
            executor.kernels.activationBackward(dy, pre, out, dx, rows * width, code, slope, 0, 1)
            return nil
        }
    }
}

extension DropoutForward {
    func bind(_ b: KernelBinding) -> BoundKernel {
        let x = b.floats(input), y = b.floats(output), mask = b.floats(self.mask), width = b.width(input), p = Float(self.p)
        return BoundKernel(isBackward: false) { executor, _, rows in
            executor.kernels.dropoutForward(
                x, y, mask, rows * width, p, executor.dropoutSeed, UInt64(executor.optimizerSteps + 1), 0, 1)
            return nil
        }
    }
}

extension DropoutBackward {
    func bind(_ b: KernelBinding) -> BoundKernel {
        let dy = b.floats(outputGradient), mask = b.floats(self.mask), dx = b.floats(inputGradient), width = b.width(outputGradient)
        return BoundKernel(isBackward: true) { executor, _, rows in
            executor.kernels.dropoutBackward(dy, mask, dx, rows * width, 0, 1)
            return nil
        }
    }
}
