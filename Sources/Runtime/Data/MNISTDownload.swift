import Foundation

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

// Fetching the MNIST files that are missing from a dataset directory. Each missing file is asked
// for as NAME.gz from each mirror in turn; a download counts only if it inflates cleanly and the
// SHA-256 of the inflated bytes is the expected one, and only then is it written (atomically, so
// no half-written file is ever left). When some file cannot be had from any mirror, the error lists
// every such file with the full path to put it at, and what went wrong at each mirror.

/// The mirrors mlpc downloads MNIST from, in the order torchvision tries them.
public let defaultMNISTMirrors = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
]

/// The mirrors to use: `MLPC_MNIST_MIRRORS` (comma-separated base URLs) when it is set and names
/// at least one, otherwise `defaultMNISTMirrors`. Each base URL is given a trailing slash.
public func mnistMirrors(environment: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
    let listed = (environment["MLPC_MNIST_MIRRORS"] ?? "")
        .split(separator: ",")
        .map { $0.trimmingCharacters(in: .whitespaces) }
        .filter { !$0.isEmpty }
        .map { $0.hasSuffix("/") ? $0 : $0 + "/" }
    return listed.isEmpty ? defaultMNISTMirrors : listed
}

/// Some dataset files are missing and could not be downloaded (or the directory cannot be made).
public struct DatasetDownloadError: Error, CustomStringConvertible, Sendable {
    public struct Attempt: Sendable, Equatable {
        public var url: String
        public var failure: String
    }

    public struct MissingFile: Sendable {
        public var name: String
        /// Where the file should be put (the .gz name; the decompressed NAME works too).
        public var destination: String
        public var attempts: [Attempt]
    }

    public var directory: String
    public var missing: [MissingFile]
    /// Set when the problem is the directory itself rather than the downloads.
    public var directoryProblem: String?

    public var description: String {
        var lines: [String] = []
        if let directoryProblem {
            lines.append("cannot create the dataset directory \(directory): \(directoryProblem)")
        }
        lines.append("\(missing.count) dataset file\(missing.count == 1 ? " is" : "s are") missing from \(directory) and could not be downloaded:")
        for file in missing {
            lines.append("  \(file.name): put \(file.name).gz (or the decompressed \(file.name)) at \(file.destination)")
            for attempt in file.attempts {
                lines.append("    \(attempt.url): \(attempt.failure)")
            }
        }
        return lines.joined(separator: "\n")
    }
}

/// Makes sure the MNIST files are in `directory` (creating it), downloading those that are missing
/// (neither NAME nor NAME.gz exists) from `mirrors`, and verifying each download against
/// `checksums` (SHA-256 of the decompressed bytes, by file name). Files already there are left as
/// they are: `IDXDataset.load` verifies them. `timeout` bounds both connecting and each silence
/// while receiving. Returns the paths written; `log` is told about each download.
@discardableResult
public func ensureMNIST(
    directory: String, mirrors: [String] = mnistMirrors(), checksums: [String: SHA256Digest] = MNISTChecksums.decompressed,
    layout: IDXDatasetLayout = .mnist, timeout: TimeInterval = 30, log: (String) -> Void
) throws -> [String] {
    let located = DatasetLocator.locate(directory: directory, layout: layout)
    let missingNames = DatasetFileRole.allCases.filter { located[$0] == nil }.map { layout.name(of: $0) }
    guard !missingNames.isEmpty else { return [] }
    let destinations = missingNames.map { DatasetLocator.path(directory, $0) + ".gz" }

    do {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    } catch {
        let missing = zip(missingNames, destinations).map { DatasetDownloadError.MissingFile(name: $0, destination: $1, attempts: []) }
        throw DatasetDownloadError(directory: directory, missing: missing, directoryProblem: error.localizedDescription)
    }

    let client = HTTPDownloader(timeout: timeout)
    var written: [String] = []
    var failed: [DatasetDownloadError.MissingFile] = []
    for (name, destination) in zip(missingNames, destinations) {
        var attempts: [DatasetDownloadError.Attempt] = []
        for mirror in mirrors {
            let url = mirror + name + ".gz"
            log("downloading \(url)")
            do {
                let compressed = try client.fetch(url)
                // Hashed as it inflates: the decompressed file is never held in memory.
                let (digest, _) = try DecompressingReader(compressedBytes: compressed, name: url)
                    .digestRemaining(limit: IDXFile.maximumDataLength)
                if let expected = checksums[name], expected != digest {
                    throw DownloadFailure("checksum mismatch for \(name): SHA-256 of the decompressed bytes is \(digest.hex), expected \(expected.hex)")
                }
                try writeFileAtomically(compressed, to: destination)
                log("saved \(destination) (\(compressed.count) bytes, SHA-256 \(digest.hex) decompressed)")
                written.append(destination)
                attempts.removeAll()
                break
            } catch let error as IDXError {
                attempts.append(.init(url: url, failure: "not a valid gzip file: \(error.reason)"))
            } catch let error as DownloadFailure {
                attempts.append(.init(url: url, failure: error.message))
            } catch let error as FileWriteError {
                attempts.append(.init(url: url, failure: error.description))
            } catch {
                attempts.append(.init(url: url, failure: "\(error)"))
            }
            log("  failed: \(attempts.last?.failure ?? "")")
        }
        if !written.contains(destination) {
            failed.append(.init(name: name, destination: destination, attempts: attempts))
        }
    }
    guard failed.isEmpty else { throw DatasetDownloadError(directory: directory, missing: failed, directoryProblem: nil) }
    return written
}

struct DownloadFailure: Error {
    var message: String
    init(_ message: String) { self.message = message }
}

/// A synchronous HTTP GET with a connect/idle timeout and a cap on the body size, on URLSession.
final class HTTPDownloader {
    /// Larger than any MNIST file (the training images are about 9.9 MB compressed).
    static let maximumBodySize = 256 << 20

    let timeout: TimeInterval

    init(timeout: TimeInterval) { self.timeout = timeout }

    func fetch(_ address: String) throws -> [UInt8] {
        guard let url = URL(string: address), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https" else {
            throw DownloadFailure("not an http(s) URL")
        }
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = timeout
        configuration.timeoutIntervalForResource = max(timeout, 600)
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        let receiver = BodyReceiver(limit: Self.maximumBodySize)
        let session = URLSession(configuration: configuration, delegate: receiver, delegateQueue: nil)
        defer { session.invalidateAndCancel() }
        session.dataTask(with: url).resume()
        receiver.done.wait()
        return try receiver.result()
    }
}

/// Collects a response body; the session's delegate queue calls it, `fetch` waits on `done`.
private final class BodyReceiver: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    let done = DispatchSemaphore(value: 0)
    private let limit: Int
    private let lock = NSLock()
    private var body: [UInt8] = []
    private var status: Int?
    private var failure: String?

    init(limit: Int) { self.limit = limit }

    func result() throws -> [UInt8] {
        lock.lock()
        defer { lock.unlock() }
        if let failure { throw DownloadFailure(failure) }
        return body
    }

    func urlSession(
        _ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
        completionHandler: @escaping (URLSession.ResponseDisposition) -> Void
    ) {
        let code = (response as? HTTPURLResponse)?.statusCode ?? 200
        lock.lock()
        status = code
        if code != 200 { failure = "HTTP \(code) \(HTTPURLResponse.localizedString(forStatusCode: code))" }
        lock.unlock()
        completionHandler(code == 200 ? .allow : .cancel)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        lock.lock()
        if body.count + data.count > limit {
            failure = "response larger than \(limit) bytes"
            lock.unlock()
            dataTask.cancel()
            return
        }
        body.append(contentsOf: data)
        lock.unlock()
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        lock.lock()
        if failure == nil, let error {
            failure = Self.describe(error)
        }
        lock.unlock()
        done.signal()
    }

    private static func describe(_ error: Error) -> String {
        guard let urlError = error as? URLError else { return error.localizedDescription }
        switch urlError.code {
        case .cannotConnectToHost: return "connection refused"
        case .timedOut: return "timed out"
        case .cannotFindHost, .dnsLookupFailed: return "host not found (offline?)"
        case .notConnectedToInternet: return "not connected to the internet"
        case .networkConnectionLost: return "connection lost"
        case .secureConnectionFailed, .serverCertificateUntrusted, .serverCertificateHasBadDate: return "TLS failure: \(urlError.localizedDescription)"
        default: return urlError.localizedDescription
        }
    }
}
