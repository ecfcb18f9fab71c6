#if canImport(Glibc)
import Files
import DataSources
import Glibc
#elseif canImport(Darwin)
import Darwin
#elseif canImport(Musl)
import Musl
#endif
import KernelInterface
import KernelsAVX2
import KernelsAVX512
import KernelsPortable

/// The instruction-set features the kernel modules need, as the operating system reports them (so they
/// already account for OS support of the wider registers: Linux drops AVX-512 from /proc/cpuinfo when
/// XSAVE does not enable the zmm state).
public struct CPUFeatures: Equatable, Sendable {
    /// AVX-512 F, BW, VL and DQ.
    public var avx512: Bool
    /// AVX2 and FMA.
    public var avx2: Bool

    public init(avx512: Bool, avx2: Bool) {
        self.avx512 = avx512
        self.avx2 = avx2
    }

    /// The best kernel module this CPU runs.
    public var bestISA: KernelISA {
        avx512 ? .avx512 : avx2 ? .avx2 : .portable
    }

    public func supports(_ isa: KernelISA) -> Bool {
        switch isa {
        case .avx512: return avx512
        case .avx2: return avx2 || avx512
        case .portable: return true
        }
    }

    /// Features from the text of /proc/cpuinfo: the first "flags" line.
    public init(procCPUInfo text: String) {
        var flags = Set<Substring>()
        for line in text.split(separator: "\n") where line.hasPrefix("flags") {
            if let colon = line.firstIndex(of: ":") {
                flags = Set(line[line.index(after: colon)...].split(separator: " "))
            }
            break
        }
        avx512 = ["avx512f", "avx512bw", "avx512vl", "avx512dq"].allSatisfy { flags.contains($0) }
        avx2 = flags.contains("avx2") && flags.contains("fma")
    }

    /// The running CPU's features. Not x86-64: none (the portable kernels).
    public static func current() -> CPUFeatures {
        #if arch(x86_64) && os(Linux)
        guard let text = readWholeFile("/proc/cpuinfo") else { return CPUFeatures(avx512: false, avx2: false) }
        return CPUFeatures(procCPUInfo: text)
        #elseif arch(x86_64) && canImport(Darwin)
        let avx512 = ["hw.optional.avx512f", "hw.optional.avx512bw", "hw.optional.avx512vl", "hw.optional.avx512dq"]
            .allSatisfy(sysctlFlag)
        return CPUFeatures(avx512: avx512, avx2: sysctlFlag("hw.optional.avx2_0") && sysctlFlag("hw.optional.fma"))
        #else
        return CPUFeatures(avx512: false, avx2: false)
        #endif
    }
}

public enum KernelSelectionError: Error, Equatable, CustomStringConvertible {
    /// MLPC_KERNELS names no kernel set.
    case unknownKernels(String)
    /// MLPC_KERNELS asks for kernels this CPU cannot run.
    case unsupportedKernels(KernelISA)

    public var description: String {
        switch self {
        case .unknownKernels(let value):
            return "MLPC_KERNELS=\(value) is not a kernel set; use avx512, avx2 or portable"
        case .unsupportedKernels(let isa):
            return "MLPC_KERNELS=\(isa.rawValue): this CPU does not support \(isa.rawValue)"
        }
    }
}

/// The kernels compiled for an instruction set. Calling them on a CPU without it stops the process
/// with an illegal instruction; `selectKernels` checks first.
public func kernels(for isa: KernelISA) -> KernelSet {
    switch isa {
    case .avx512: return KernelsAVX512.kernelSet
    case .avx2: return KernelsAVX2.kernelSet
    case .portable: return KernelsPortable.kernelSet
    }
}

/// The fastest kernels the CPU runs, or those named by MLPC_KERNELS (avx512, avx2, portable) when the
/// CPU supports them.
public func selectKernels(
    environment: [String: String], features: CPUFeatures = .current()
) -> Result<KernelSet, KernelSelectionError> {
    guard let requested = environment["MLPC_KERNELS"], !requested.isEmpty else {
        return .success(kernels(for: features.bestISA))
    }
    guard let isa = KernelISA(rawValue: requested.lowercased()) else {
        return .failure(.unknownKernels(requested))
    }
    guard features.supports(isa) else { return .failure(.unsupportedKernels(isa)) }
    return .success(kernels(for: isa))
}

/// The current process's environment, for `selectKernels`.
public func processEnvironment() -> [String: String] {
    var result: [String: String] = [:]
    var entry = environ
    while let pointer = entry.pointee {
        let text = String(cString: pointer)
        if let equals = text.firstIndex(of: "=") {
            result[String(text[..<equals])] = String(text[text.index(after: equals)...])
        }
        entry += 1
    }
    return result
}

#if arch(x86_64) && canImport(Darwin)
private func sysctlFlag(_ name: String) -> Bool {
    var value: Int32 = 0
    var size = MemoryLayout<Int32>.size
    return sysctlbyname(name, &value, &size, nil, 0) == 0 && value != 0
}
#endif

private func readWholeFile(_ path: String) -> String? {
    guard let file = fopen(path, "r") else { return nil }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = fread(&buffer, 1, buffer.count, file)
        if count <= 0 { break }
        bytes.append(contentsOf: buffer[0..<count])
    }
    return String(decoding: bytes, as: UTF8.self)
}
