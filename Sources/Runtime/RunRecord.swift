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

    enum CodingKeys: String, CodingKey {
        case mlpcVersion = "mlpc_version", status, stopReason = "stop_reason", specPath = "spec_path",
            specSHA256 = "spec_sha256", specName = "spec_name", dataDirectory = "data_directory", dataSHA256 = "data_sha256",
            seed, threads, kernels, cpu, epochs, batchSize = "batch_size", parameters, arenaBytes = "arena_bytes",
            epochSeconds = "epoch_seconds", epochMeanLoss = "epoch_mean_loss", epochTestAccuracy = "epoch_test_accuracy",
            testAccuracy = "test_accuracy", testAccuracyCI95 = "test_accuracy_ci95", totalSeconds = "total_seconds",
            startedAt = "started_at"
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
