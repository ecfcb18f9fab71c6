import Files

/// Inputs a figure cannot be drawn from (mismatched counts, wrong image sizes, a non-square
/// matrix); says which input and why.
public struct FigureError: Error, CustomStringConvertible, Equatable {
    public var figure: String
    public var reason: String

    public init(figure: String, reason: String) {
        self.figure = figure
        self.reason = reason
    }

    public var description: String { "cannot draw the \(figure) figure: \(reason)" }
}
