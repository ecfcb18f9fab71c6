import KernelInterface

/// The machine a plan is made for: the instruction set its kernels use, threads, L2 size and memory.
/// The planner is a pure function of (Spec, Target); the command line reads the host's Target.
public struct Target: Codable, Equatable, Sendable {
    public var isa: KernelISA
    public var threads: Int
    public var l2Bytes: Int
    /// Physical memory; a spec whose arena and data need more is refused.
    public var memoryBytes: Int
    public var cpuName: String

    public init(isa: KernelISA, threads: Int, l2Bytes: Int, memoryBytes: Int, cpuName: String) {
        self.isa = isa
        self.threads = threads
        self.l2Bytes = l2Bytes
        self.memoryBytes = memoryBytes
        self.cpuName = cpuName
    }

    /// A fixed target for tests and for reading plans made elsewhere: AVX-512, 2 threads, Zen 5 caches, 24 GiB.
    public static let reference = Target(
        isa: .avx512, threads: 2, l2Bytes: 1024 * 1024, memoryBytes: 24 << 30,
        cpuName: "reference (2-core Zen 5)")
}
