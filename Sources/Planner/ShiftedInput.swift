/// The linear layer that reads the gathered batch directly (the first one, with nothing but a flatten
/// before it) and absorbs the normalization's shift. The gathers of training and evaluation write
/// u = pixel * scale instead of x = u + shift, so a zero pixel is exactly 0, and the layer computes
/// x wᵀ as u wᵀ + shift * (the column sums of w), and its weight gradient xᵀ dy as uᵀ dy + shift * (the
/// column sums of dy). Its products then skip the zero pixels (about four in five of MNIST's) without
/// changing a bit (KernelSource's ShiftedInput.swift says why). The two formulas round differently
/// from multiplying x itself, like any other order of the same sums; the layer's results do not depend
/// on the threads, the kernel set's choice between the pixel loops and the blocked product, or the
/// stored feature order.
public struct ShiftedInput: Codable, Equatable, Sendable {
    public var layer: String

    public init(layer: String) { self.layer = layer }
}
