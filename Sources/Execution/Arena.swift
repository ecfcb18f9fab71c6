import Files
import DataSources
import Foundation
import Planner

/// The one allocation a plan runs in: 64-byte aligned, sized exactly as the plan says. Slices of the plan
/// are byte offsets into it. Nothing else that grows with the model or the batch is allocated.
public final class Arena {
    public let bytes: Int
    public let base: UnsafeMutableRawPointer

    /// Throws when the memory cannot be had (the planner refuses specs larger than the machine first).
    public init(bytes: Int) throws {
        var pointer: UnsafeMutableRawPointer? = nil
        let size = max(bytes, 64)
        guard posix_memalign(&pointer, 64, size) == 0, let base = pointer else {
            throw RuntimeError.outOfMemory(bytes: bytes)
        }
        memset(base, 0, size)
        self.bytes = bytes
        self.base = base
    }

    deinit { free(base) }

    @inline(__always) public func floats(_ slice: Planner.Slice) -> UnsafeMutablePointer<Float> {
        (base + slice.offset).assumingMemoryBound(to: Float.self)
    }

    @inline(__always) public func int32s(_ slice: Planner.Slice) -> UnsafeMutablePointer<Int32> {
        (base + slice.offset).assumingMemoryBound(to: Int32.self)
    }

    public func floatBuffer(_ slice: Planner.Slice) -> UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: floats(slice), count: slice.elements)
    }
}
