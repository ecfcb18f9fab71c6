import KernelInterface

/// The linear layer that reads the gathered batch directly (the first one, with nothing but a flatten
/// before it) and absorbs the normalization's shift. The gathers of training and evaluation write
/// u = pixel * scale instead of x = u + shift, so a zero pixel is exactly 0, and the layer computes
/// x wᵀ as u wᵀ + shift * (the column sums of w), and its weight gradient xᵀ dy as uᵀ dy + shift * (the
/// column sums of dy). Its products can then skip the zero pixels (the sparse-input pass) without
/// changing a bit (KernelSource's ShiftedInput.swift says why). The two formulas round differently
/// from multiplying x itself, like any other order of the same sums; the layer's results do not depend
/// on the threads, the kernel set's choice between the pixel loops and the blocked product, or the
/// stored feature order.
public struct ShiftedInput: Codable, Equatable, Sendable {
    public var layer: String

    public init(layer: String) { self.layer = layer }
}

/// The shifted-input pass: finds the first linear layer whose input is the gathered batch itself,
/// makes both gathers leave the shift out and gives that layer's forward products (training and
/// evaluation) and weight gradient the shifted variant, with room for its scratch in the workspace.
func addShiftedInput(_ plan: inout Plan) -> Result<String, PassSkipped> {
    guard case .gatherBatch(let gather)? = plan.trainKernels.first else { return .failure(PassSkipped("the step has no gather")) }
    guard gather.element == .uint8 else { return .failure(PassSkipped("the samples are table rows, encoded before the gather: there is no shift")) }
    let normalization = gather.normalization
    guard (Float(255) * normalization.scale).isFinite, normalization.shift.isFinite else {
        return .failure(PassSkipped("the normalization's scale or shift is not finite"))
    }
    var layer: String? = nil
    for kernel in plan.trainKernels {
        if case .linearForward(let k) = kernel, k.input.buffer == gather.input.buffer {
            layer = k.layer
            break
        }
    }
    guard let layer else { return .failure(PassSkipped("no linear layer reads the gathered batch directly")) }
    let shift = InputShift(shift: normalization.shift, skipsZeroInputs: false)
    var scratch = 0
    func rewrite(_ kernels: inout [Kernel]) {
        for index in kernels.indices {
            switch kernels[index] {
            case .gatherBatch(var k):
                k.shiftFoldedInto = layer
                kernels[index] = .gatherBatch(k)
            case .linearForward(var k) where k.layer == layer:
                k.inputShift = shift
                let mm = k.product
                scratch = max(scratch, MatmulTile.workspaceFloats(mm.tile, m: mm.m, n: mm.n, k: mm.k) + shiftedForwardScratchFloats(m: mm.m, n: mm.n, k: mm.k))
                kernels[index] = .linearForward(k)
            case .linearBackwardWeights(var k) where k.layer == layer:
                k.inputShift = shift
                let mm = k.product
                scratch = max(
                    scratch,
                    MatmulTile.workspaceFloats(mm.tile, m: mm.m, n: mm.n, k: mm.k)
                        + shiftedWeightGradientScratchFloats(m: mm.k, n: mm.n, k: mm.m))
                kernels[index] = .linearBackwardWeights(k)
            default:
                break
            }
        }
    }
    rewrite(&plan.trainKernels)
    rewrite(&plan.evalKernels)
    plan.growWorkspace(toFloatsPerThread: scratch)
    plan.shiftedInput = ShiftedInput(layer: layer)
    plan.fusions.append(
        "the input normalization's shift is folded into \(layer): the gather writes pixel * scale (exactly 0 for "
            + "a zero pixel) and \(layer) adds shift * its weights' column sums, so its products skip zero pixels")
    return .success("\(layer) adds the shift \(normalization.shift); the gathers write pixel * \(normalization.scale)")
}

/// The sparse-input pass: the shifted layer's products loop over the nonzero inputs of a batch that is
/// mostly zeros (the kernels choose per batch; the bits are the blocked product's).
func addSparseInput(_ plan: inout Plan) -> Result<String, PassSkipped> {
    guard let layer = plan.shiftedInput?.layer else { return .failure(PassSkipped("needs shifted-input")) }
    func rewrite(_ kernels: inout [Kernel]) {
        for index in kernels.indices {
            switch kernels[index] {
            case .linearForward(var k) where k.inputShift != nil:
                k.inputShift?.skipsZeroInputs = true
                kernels[index] = .linearForward(k)
            case .linearBackwardWeights(var k) where k.inputShift != nil:
                k.inputShift?.skipsZeroInputs = true
                kernels[index] = .linearBackwardWeights(k)
            default:
                break
            }
        }
    }
    rewrite(&plan.trainKernels)
    rewrite(&plan.evalKernels)
    return .success("\(layer)'s products loop over the nonzero inputs when at most half of a batch's are nonzero")
}

extension Plan {
    /// Makes the workspace at least `floats` per thread.
    mutating func growWorkspace(toFloatsPerThread floats: Int) {
        guard let index = buffers.firstIndex(where: { $0.role == .workspace }) else { return }
        let shape = buffers[index].shape
        guard shape.count == 2, floats > shape[1] else { return }
        buffers[index].shape = [shape[0], floats]
        buffers[index].elements = shape[0] * floats
    }
}
