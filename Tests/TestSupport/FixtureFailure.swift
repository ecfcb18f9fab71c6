/// Thrown by a test's setup step (training a fixture, checking a model) that failed: the test fails
/// with this message, and never counts as skipped.
public struct FixtureFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
