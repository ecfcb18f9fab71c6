import Figures
import Files
import DataSources
import Execution
import Foundation

/// run.json: what was run, on what, and what came out. Written when the run starts (status "running"),
/// after every epoch, and at the end, each time atomically.
public struct RunRecord: Codable, Equatable {
    public var mlpcVersion: String
    public var status: String
    /// Why the run stopped early (diverged, interrupted), nil when it completed.
    public var stopReason: String?
    public var specPath: String
    public var specSHA256: String
    public var specName: String
    public var dataDirectory: String
    /// File name -> SHA-256 of its decompressed bytes.
    public var dataSHA256: [String: String]
    public var seed: UInt64
    public var threads: Int
    public var kernels: String
    public var cpu: String
    public var epochs: Int
    public var batchSize: Int
    public var parameters: Int
    public var arenaBytes: Int
    public var epochSeconds: [Double]
    public var epochMeanLoss: [Double]
    public var epochTestAccuracy: [Double]
    public var testAccuracy: Double?
    public var testAccuracyCI95: Double?
    public var totalSeconds: Double
    public var startedAt: String
    /// The processes of a data-parallel run (`mpirun -np N`); absent for one process.
    public var ranks: Int? = nil
    /// A regressor's per-epoch test R² and final test metrics, in the target's units (nil for classifiers).
    public var epochTestR2: [Double]? = nil
    public var testMAE: Double? = nil
    public var testRMSE: Double? = nil
    public var testR2: Double? = nil
    /// A table classifier's class names, in output order.
    public var classNames: [String]? = nil

    enum CodingKeys: String, CodingKey {
        case mlpcVersion = "mlpc_version", status, stopReason = "stop_reason", specPath = "spec_path",
            specSHA256 = "spec_sha256", specName = "spec_name", dataDirectory = "data_directory", dataSHA256 = "data_sha256",
            seed, threads, kernels, cpu, epochs, batchSize = "batch_size", parameters, arenaBytes = "arena_bytes",
            epochSeconds = "epoch_seconds", epochMeanLoss = "epoch_mean_loss", epochTestAccuracy = "epoch_test_accuracy",
            testAccuracy = "test_accuracy", testAccuracyCI95 = "test_accuracy_ci95", totalSeconds = "total_seconds",
            startedAt = "started_at", epochTestR2 = "epoch_test_r2", testMAE = "test_mae", testRMSE = "test_rmse",
            testR2 = "test_r2", classNames = "class_names", ranks
    }

    public func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(self)) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}

extension EpochMetrics {
    /// One line of metrics.jsonl.
    public func jsonLine() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(self)) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}

/// "2026-11-29T07:13:19Z": the UTC time in ISO 8601, as ISO8601DateFormatter writes it by default, but
/// from the C library: the formatter loads ICU, whose tables added about 5 MB to a run's resident memory.
public func utcTimestamp(secondsSince1970 seconds: Int) -> String {
    var time = time_t(seconds)
    var parts = tm()
    guard gmtime_r(&time, &parts) != nil else { return "1970-01-01T00:00:00Z" }
    func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
    let year = Int(parts.tm_year) + 1900
    let yearText = String(repeating: "0", count: max(0, 4 - String(year).count)) + String(year)
    return "\(yearText)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
}
