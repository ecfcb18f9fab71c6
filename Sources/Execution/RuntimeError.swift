import Files
import DataSources
import Foundation
import SpecParser

/// Why a run could not go on, with the place it came from where there is one.
public enum RuntimeError: Error, CustomStringConvertible {
    case outOfMemory(bytes: Int)
    /// The numerics guard: a loss or parameter stopped being finite.
    case nonFinite(epoch: Int, step: Int, kernel: String, what: String, source: SourceLocation?)
    case data(String)
    /// A refusal that a line of the spec answers for (its message names no place; the location does).
    case located(SourceLocation, String)
    case interrupted(epoch: Int, step: Int)

    public var description: String {
        switch self {
        case .outOfMemory(let bytes): return "cannot allocate the arena of \(bytes) bytes"
        case .nonFinite(let epoch, let step, let kernel, let what, let source):
            let place = source.map { " (\($0))" } ?? ""
            return "training diverged at epoch \(epoch), step \(step): \(what) after kernel \(kernel)\(place); lower the learning rate"
        case .data(let message): return message
        case .located(let location, let message): return "\(location): \(message)"
        case .interrupted(let epoch, let step): return "interrupted at epoch \(epoch), step \(step)"
        }
    }
}
