/// A shape as messages and the plan print it: "[1, 28, 28]".
public func shapeText(_ shape: [Int]) -> String { "[" + shape.map(String.init).joined(separator: ", ") + "]" }
