import KernelInterface
import Planner

extension BatchNormFold {
    func bind(_ b: KernelBinding) -> BoundKernel {
        let layerWeight = b.floats(self.layerWeight), layerBias = self.layerBias.map(b.floats)
        let weight = self.weight.map(b.floats), bias = self.bias.map(b.floats)
        let runningMean = b.floats(self.runningMean), runningVar = b.floats(self.runningVar)
        let foldedWeight = b.floats(self.foldedWeight), foldedBias = b.floats(self.foldedBias)
        let layout = self.layout, eps = self.eps
        return BoundKernel(isBackward: false) { executor, _, _ in
            executor.kernels.batchNormFold(layerWeight, layerBias, weight, bias, runningMean, runningVar, foldedWeight, foldedBias, layout, eps)
            return nil
        }
    }
}
