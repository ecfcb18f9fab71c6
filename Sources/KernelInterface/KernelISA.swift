/// The instruction sets the kernels are compiled for. Each has its own kernel module (KernelsAVX512,
/// KernelsAVX2, KernelsPortable) built from the same source with different code generation flags.
public enum KernelISA: String, Codable, Equatable, Hashable, Sendable, CaseIterable {
    case avx512
    case avx2
    case portable

    /// The register block the matrix product uses on this instruction set: the accumulators of an
    /// mr x nr block must fit in the vector registers with room for the B row and the A broadcast.
    /// AVX-512 has 32 zmm registers: 8 x 32 floats = 16 accumulators. AVX2 has 16 ymm registers:
    /// 6 x 16 floats = 12 accumulators (a SIMD16 spans two ymm).
    public var registerBlock: MatmulRegisterBlock {
        switch self {
        case .avx512: return .r8x32
        case .avx2: return .r6x16
        case .portable: return .r4x16
        }
    }

    /// Recognizes the instruction set from a kernel module's name ("KernelsAVX512" -> .avx512).
    /// The kernel source is shared by three modules and learns which one it is compiled into from
    /// `#fileID`, which starts with the module name.
    public init?(kernelModuleName: String) {
        switch kernelModuleName {
        case "KernelsAVX512": self = .avx512
        case "KernelsAVX2": self = .avx2
        case "KernelsPortable": self = .portable
        default: return nil
        }
    }
}
