// How a dataset's images relate to a model's input shape, and how a shape is drawn as an image.

/// The per-image shape the dataset must have for the spec's input: the input shape itself, or the same
/// shape without leading 1s (a [1, 28, 28] input takes 28 x 28 images), or, for an input that is flat
/// once its leading 1s are dropped ([784], [1, 784]), any image of as many pixels.
package func acceptsImageShape(_ imageShape: [Int], input: [Int]) -> Bool {
    let flatInput = Array(input.drop { $0 == 1 })
    return Array(imageShape.drop { $0 == 1 }) == flatInput || imageShape == input
        || (flatInput.count <= 1 && imageShape.reduce(1, *) == input.reduce(1, *))
}

/// Width and height of an image of `shape`: the last two dimensions. A flat shape of n features is
/// a square image when n is a perfect square (MNIST's 784 is 28 x 28, the way torchvision flattens
/// it), else one row of n.
package func imageDimensions(of shape: [Int]) -> (width: Int, height: Int) {
    let dims = shape.drop { $0 == 1 }
    if dims.count >= 2 { return (dims[dims.endIndex - 1], dims[dims.endIndex - 2]) }
    let count = dims.last ?? shape.reduce(1, *)
    if let side = squareSide(of: count), side > 1 { return (side, side) }
    return (count, 1)
}

/// The integer s with s * s == n, if there is one.
package func squareSide(of n: Int) -> Int? {
    guard n >= 0 else { return nil }
    // The double root is within one of the integer root; the candidates around it settle it exactly.
    let guess = Int(Double(n).squareRoot().rounded())
    for side in max(0, guess - 1)...(guess + 1) {
        let (square, overflow) = side.multipliedReportingOverflow(by: side)
        if !overflow, square == n { return side }
    }
    return nil
}
