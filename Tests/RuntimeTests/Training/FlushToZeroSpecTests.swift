import CFloatEnvironment
import SpecParser
import XCTest

/// The kernels' threads run with flush-to-zero, which turns a subnormal into 0 when a Double is
/// converted to Float. The spec's float32 range messages must not depend on it.
final class FlushToZeroSpecTests: XCTestCase {
    func message(lr: String) -> String {
        let text = """
            name: f
            data: {dir: x}
            model: {input_shape: [2], layers: [linear: {out: 2}]}
            loss: mse
            optimizer: {kind: sgd, lr: \(lr)}
            training: {batch_size: 1, epochs: 1}
            """
        return SpecLoader.parse(bytes: Array(text.utf8), path: "f.yaml").diagnostics.map(\.message).joined(separator: "\n")
    }

    func testSubnormalMessagesAreTheSameWithFlushToZero() {
        mlpc_enable_flush_to_zero()
        XCTAssertEqual(mlpc_flush_to_zero_enabled(), 1)
        let subnormal = message(lr: "1e-40")
        XCTAssertTrue(subnormal.contains("1e-40 is below the smallest normal float32 (1.2e-38) and is a subnormal"), subnormal)
        let zero = message(lr: "1e-46")
        XCTAssertTrue(zero.contains("1e-46 is below the smallest normal float32 (1.2e-38) and rounds to 0"), zero)
    }
}
