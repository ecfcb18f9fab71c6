import Foundation
import XCTest

@testable import Runtime
@testable import Figures
@testable import Files
@testable import DataSources
@testable import Execution

final class RunRecordTests: XCTestCase {
    /// run.json's started_at is written without Foundation's formatter (it loads ICU); it must read the
    /// same as ISO8601DateFormatter's default output.
    func testUTCTimestampMatchesISO8601DateFormatter() {
        let formatter = ISO8601DateFormatter()
        for seconds in [0, 59, 951_782_400, 1_700_000_000, 1_795_000_000, 4_102_444_799] {
            XCTAssertEqual(
                utcTimestamp(secondsSince1970: seconds), formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds))),
                "\(seconds)")
        }
    }
}
