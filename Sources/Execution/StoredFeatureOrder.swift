import Files
import DataSources
import KernelInterface
import Planner

/// The first linear layer's output features, stored live-first.
///
/// With ReLU, many of the first layer's units stop firing early in training and never fire again (on the
/// reference MLP, 51 of fc1's 128 after the first epoch, in PyTorch too). Their output gradient is zero,
/// so their weight gradient is zero and Adam only decays their second moment: work that can be skipped
/// without changing a bit, but only in whole 16-feature vectors, and dead units are spread over all of
/// them. So during an epoch the layer's features sit in the parameter block (weight panels, bias,
/// gradients, optimizer state) in another order: within each part's share of the features (`shares`,
/// the split of the products and the optimizer step), the features that were live in the second half
/// of the previous epoch first, the others last. The weight gradient then stores zeros for whole
/// vectors of idle features without multiplying, and Adam skips their square roots and divisions.
///
/// Nothing else sees the order: the forward product puts its output back in the model's order (each
/// part its own columns, since the order keeps every feature in its share), the weight gradient gathers
/// dy's columns as it packs them, and every element's sums keep their order, so any order gives the
/// same bits (a test trains with and without it and compares every byte). Outside an epoch's steps the
/// block is in the model's order: `StepExecutor.parameters` and `stateBlock` restore it first, so files,
/// reports and checks never see another order. The order is not saved anywhere.
final class StoredFeatureOrder {
    let layer: String
    let outFeatures: Int
    let inFeatures: Int
    /// The features each part of the layer's products and optimizer step owns; the order maps each
    /// onto itself.
    let shares: [Range<Int>]
    /// The layer's weight and bias, as offsets in the parameter block (and the state blocks).
    let weightOffset: Int
    let biasOffset: Int?
    /// Stored position -> model feature.
    let modelFeature: UnsafeMutablePointer<Int32>
    /// Per stored position: set by the weight-gradient kernel when the feature's dy was not all zero.
    let live: UnsafeMutablePointer<Float>
    /// Per model feature: live since the last `reorder` (`live`, gathered whenever the order changes).
    var liveFeatures: [Bool]
    let weightFloats: Int
    private(set) var isIdentity = true

    init(layer: String, weight: ParameterTensor, bias: ParameterTensor?, parts: Int) {
        self.layer = layer
        outFeatures = weight.shape[0]
        inFeatures = weight.shape[1]
        shares = (0..<max(parts, 1)).map { outputFeatureShare(outFeatures: weight.shape[0], part: $0, parts: max(parts, 1)) }
        weightOffset = weight.offset
        biasOffset = bias?.offset
        weightFloats = weight.storedCount
        modelFeature = .allocate(capacity: outFeatures)
        for s in 0..<outFeatures { modelFeature[s] = Int32(s) }
        live = .allocate(capacity: outFeatures)
        live.initialize(repeating: 0, count: outFeatures)
        liveFeatures = [Bool](repeating: false, count: outFeatures)
    }

    deinit {
        modelFeature.deallocate()
        live.deallocate()
    }

    /// What the weight-gradient kernel gets (always, so that it records which features were live).
    var kernelOrder: FeatureOrder { FeatureOrder(modelFeature: modelFeature, live: live) }
    /// What the forward kernel gets: nothing while the order is the model's (no pass over its output).
    var forwardOrder: FeatureOrder? { isIdentity ? nil : kernelOrder }

    /// Features live since the last `reorder`.
    var liveCount: Int {
        gatherLiveFlags()
        return liveFeatures.filter { $0 }.count
    }

    /// Forgets the liveness recorded so far: the next `reorder` goes by what is recorded from here on.
    func restartLiveness() {
        live.update(repeating: 0, count: outFeatures)
        liveFeatures = [Bool](repeating: false, count: outFeatures)
    }

    private func gatherLiveFlags() {
        for s in 0..<outFeatures where live[s] != 0 { liveFeatures[Int(modelFeature[s])] = true }
        live.update(repeating: 0, count: outFeatures)
    }

    /// Stores the features live since the last call first in each share (each group in the model's
    /// order), rearranging `blocks` (the parameter block and the optimizer's state blocks), and starts
    /// recording liveness anew. With nothing recorded (a first epoch, a resumed one) the order is the
    /// model's. `scratch` is a block of the same layout whose layer's floats may be overwritten (the
    /// gradient block: every step writes it before reading it).
    /// `agree`, in a data-parallel run, sums one float per feature over the ranks: a feature live on
    /// any rank counts as live, so every rank stores the same order and the gradient blocks they sum
    /// line up.
    func reorder(
        _ blocks: [UnsafeMutablePointer<Float>], scratch: UnsafeMutablePointer<Float>,
        agree: ((UnsafeMutablePointer<Float>, Int) -> Void)? = nil
    ) {
        gatherLiveFlags()
        if let agree {
            var counts = liveFeatures.map { $0 ? Float(1) : 0 }
            counts.withUnsafeMutableBufferPointer { agree($0.baseAddress!, $0.count) }
            liveFeatures = counts.map { $0 > 0 }
        }
        var order: [Int32] = []
        order.reserveCapacity(outFeatures)
        for share in shares {
            for f in share where liveFeatures[f] { order.append(Int32(f)) }
            for f in share where !liveFeatures[f] { order.append(Int32(f)) }
        }
        if !liveFeatures.contains(true) { order = (0..<Int32(outFeatures)).map { $0 } }
        apply(order, blocks, scratch: scratch)
        liveFeatures = [Bool](repeating: false, count: outFeatures)
    }

    /// Puts `blocks` back in the model's order (liveness keeps being recorded).
    func restoreModelOrder(_ blocks: [UnsafeMutablePointer<Float>], scratch: UnsafeMutablePointer<Float>) {
        guard !isIdentity else { return }
        gatherLiveFlags()
        apply((0..<Int32(outFeatures)).map { $0 }, blocks, scratch: scratch)
    }

    private func apply(_ order: [Int32], _ blocks: [UnsafeMutablePointer<Float>], scratch: UnsafeMutablePointer<Float>) {
        var changed = false
        // Where each model feature is stored now.
        var position = [Int](repeating: 0, count: outFeatures)
        for s in 0..<outFeatures {
            position[Int(modelFeature[s])] = s
            if modelFeature[s] != order[s] { changed = true }
        }
        guard changed else { return }
        for block in blocks {
            let weight = block + weightOffset, weightCopy = scratch + weightOffset
            weightCopy.update(from: weight, count: weightFloats)
            for s in 0..<outFeatures {
                let from = position[Int(order[s])]
                for i in 0..<inFeatures {
                    weight[WeightPanels.offset(output: s, input: i, inFeatures: inFeatures)] =
                        weightCopy[WeightPanels.offset(output: from, input: i, inFeatures: inFeatures)]
                }
            }
            if let biasOffset {
                let bias = block + biasOffset, biasCopy = scratch + biasOffset
                biasCopy.update(from: bias, count: outFeatures)
                for s in 0..<outFeatures { bias[s] = biasCopy[position[Int(order[s])]] }
            }
        }
        var identity = true
        for s in 0..<outFeatures {
            modelFeature[s] = order[s]
            if order[s] != Int32(s) { identity = false }
        }
        isIdentity = identity
    }
}
