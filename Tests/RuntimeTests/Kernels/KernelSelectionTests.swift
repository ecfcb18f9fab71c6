import KernelInterface
import Runtime
import Figures
import Files
import DataSources
import Execution
import XCTest

final class KernelSelectionTests: XCTestCase {
    static let zen5 = CPUFeatures(avx512: true, avx2: true)
    static let haswell = CPUFeatures(avx512: false, avx2: true)
    static let old = CPUFeatures(avx512: false, avx2: false)

    func testFeaturesAreReadFromProcCPUInfoFlags() {
        let text = """
            processor\t: 0
            model name\t: Some CPU
            flags\t\t: fpu sse2 avx avx2 fma avx512f avx512dq avx512bw avx512vl
            """
        XCTAssertEqual(CPUFeatures(procCPUInfo: text), Self.zen5)
        XCTAssertEqual(CPUFeatures(procCPUInfo: "flags : sse2 avx avx2 fma avx512f avx512cd"), Self.haswell)
        XCTAssertEqual(CPUFeatures(procCPUInfo: "flags : sse2 avx avx2"), Self.old, "AVX2 without FMA is not enough")
        XCTAssertEqual(CPUFeatures(procCPUInfo: ""), Self.old)
    }

    func testTheBestSupportedKernelsAreChosenWithoutOverride() throws {
        XCTAssertEqual(try selectKernels(environment: [:], features: Self.zen5).get().isa, .avx512)
        XCTAssertEqual(try selectKernels(environment: [:], features: Self.haswell).get().isa, .avx2)
        XCTAssertEqual(try selectKernels(environment: [:], features: Self.old).get().isa, .portable)
    }

    func testOverrideChoosesASupportedKernelSet() throws {
        let environment = ["MLPC_KERNELS": "portable"]
        XCTAssertEqual(try selectKernels(environment: environment, features: Self.zen5).get().isa, .portable)
        XCTAssertEqual(try selectKernels(environment: ["MLPC_KERNELS": "avx2"], features: Self.zen5).get().isa, .avx2)
    }

    func testOverrideRefusesKernelsTheCPULacks() {
        let result = selectKernels(environment: ["MLPC_KERNELS": "avx512"], features: Self.haswell)
        XCTAssertEqual(result.map(\.isa), .failure(.unsupportedKernels(.avx512)))
        XCTAssertTrue(String(describing: KernelSelectionError.unsupportedKernels(.avx512)).contains("does not support avx512"))
    }

    func testOverrideRefusesUnknownNames() {
        let result = selectKernels(environment: ["MLPC_KERNELS": "sse9"], features: Self.zen5)
        XCTAssertEqual(result.map(\.isa), .failure(.unknownKernels("sse9")))
    }

    func testEachKernelModuleKnowsItsInstructionSet() {
        for isa in KernelISA.allCases { XCTAssertEqual(kernels(for: isa).isa, isa) }
    }
}
