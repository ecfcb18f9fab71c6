import Planner
import Files
import CCurlLoader
import Foundation

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
            lines.append("cannot create the dataset directory \(pathForMessage(directory)): \(directoryProblem)")
        }
        lines.append("\(missing.count) dataset file\(missing.count == 1 ? " is" : "s are") missing from \(pathForMessage(directory)) and could not be downloaded:")
        for file in missing {
            lines.append("  \(file.name): put \(file.name).gz (or the decompressed \(file.name)) at \(pathForMessage(file.destination))")
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
/// while receiving. Returns the paths written; `log` is told about each download. `libraryNames`
/// replaces the platform's libcurl names (`HTTPDownloader`), so tests can make it missing.
@discardableResult
public func ensureMNIST(
    directory: String, mirrors: [String] = mnistMirrors(), checksums: [String: SHA256Digest] = MNISTChecksums.decompressed,
    layout: IDXDatasetLayout = .mnist, timeout: TimeInterval = 30, log: (String) -> Void
) throws -> [String] {
    try ensureMNIST(
        directory: directory, mirrors: mirrors, checksums: checksums, layout: layout, timeout: timeout, libraryNames: nil, log: log)
}

@discardableResult
func ensureMNIST(
    directory: String, mirrors: [String], checksums: [String: SHA256Digest], layout: IDXDatasetLayout, timeout: TimeInterval,
    libraryNames: [String]?, log: (String) -> Void
) throws -> [String] {
    let located = DatasetLocator.locate(directory: directory, layout: layout)
    let missingNames = DatasetFileRole.allCases.filter { located[$0] == nil }.map { layout.name(of: $0) }
    guard !missingNames.isEmpty else { return [] }
    let destinations = missingNames.map { DatasetLocator.path(directory, $0) + ".gz" }

    // The directories this call creates (the directory and any missing parents, deepest first): removed
    // again, each only if still empty, when nothing could be downloaded.
    var created: [String] = []
    var ancestor = directory
    while ancestor.count > 1 && ancestor.hasSuffix("/") { ancestor.removeLast() }
    var info = stat()
    while !ancestor.isEmpty && ancestor != "/" && ancestor != "." && lstat(ancestor, &info) != 0 {
        created.append(ancestor)
        ancestor = (ancestor as NSString).deletingLastPathComponent
    }
    do {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    } catch {
        let missing = zip(missingNames, destinations).map { DatasetDownloadError.MissingFile(name: $0, destination: $1, attempts: []) }
        throw DatasetDownloadError(directory: directory, missing: missing, directoryProblem: error.localizedDescription)
    }

    let client = HTTPDownloader(timeout: timeout, libraryNames: libraryNames)
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
            } catch let error as LibcurlUnavailable {
                // Every mirror would fail the same way.
                attempts.append(.init(url: url, failure: error.advice(directory: directory)))
                log("  failed: \(error.advice(directory: directory))")
                break
            } catch {
                attempts.append(.init(url: url, failure: "\(error)"))
            }
            log("  failed: \(attempts.last?.failure ?? "")")
        }
        if !written.contains(destination) {
            failed.append(.init(name: name, destination: destination, attempts: attempts))
        }
    }
    guard failed.isEmpty else {
        // Directories made for downloads that all failed are removed again (rmdir: only if still empty).
        if written.isEmpty { for made in created { rmdir(made) } }
        throw DatasetDownloadError(directory: directory, missing: failed, directoryProblem: nil)
    }
    return written
}

struct DownloadFailure: Error {
    var message: String
    init(_ message: String) { self.message = message }
}

/// No libcurl could be opened, so nothing can be downloaded; the files can still be put in place by hand.
struct LibcurlUnavailable: Error {
    /// The library looked for first ("libcurl.so.4" on Linux).
    var libraryName: String
    /// What the dynamic loader said.
    var reason: String

    func advice(directory: String) -> String {
        "cannot download: libcurl (\(libraryName)) is not installed (\(reason)); install it or put the MNIST files in \(directory)"
    }
}

/// A synchronous HTTP GET with a connect/idle timeout and a cap on the body size, on libcurl opened
/// with dlopen at the first download (linking it, or FoundationNetworking, would load curl and its
/// TLS stack into every mlpc process, even those that never download).
final class HTTPDownloader {
    /// Larger than any MNIST file (the training images are about 9.9 MB compressed).
    static let maximumBodySize = 256 << 20
    /// A bound on a whole transfer, on top of the idle timeout.
    static let minimumTransferTime: TimeInterval = 600

    let timeout: TimeInterval
    let maximumBodySize: Int
    /// nil: the platform's libcurl, opened once per process. Otherwise these file names, opened for
    /// each fetch and closed after it (tests name one that does not exist).
    let libraryNames: [String]?

    init(timeout: TimeInterval, maximumBodySize: Int = HTTPDownloader.maximumBodySize, libraryNames: [String]? = nil) {
        self.timeout = timeout
        self.maximumBodySize = maximumBodySize
        self.libraryNames = libraryNames
    }

    func fetch(_ address: String) throws -> [UInt8] {
        guard let url = URL(string: address), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https" else {
            throw DownloadFailure("not an http(s) URL")
        }
        let capacity = 512
        var message = [CChar](repeating: 0, count: capacity)
        let curl: OpaquePointer?
        if let libraryNames {
            curl = Self.open(libraryNames, message: &message)
        } else {
            curl = mlpc_curl_default(&message, capacity)
        }
        guard let curl else {
            throw LibcurlUnavailable(
                libraryName: libraryNames?.first ?? String(cString: mlpc_curl_primary_library_name()),
                reason: String(cString: message))
        }
        defer { if libraryNames != nil { mlpc_curl_close(curl) } }

        let collector = BodyCollector(limit: maximumBodySize)
        var status = 0
        var systemError = 0
        let seconds = { (interval: TimeInterval) in Int(max(1, min(interval.rounded(.up), 86_400))) }
        let result = withExtendedLifetime(collector) {
            mlpc_http_get(
                curl, address, seconds(timeout), seconds(timeout), seconds(max(timeout, Self.minimumTransferTime)),
                collectBody, Unmanaged.passUnretained(collector).toOpaque(), &status, &systemError, &message, capacity)
        }
        let detail = String(cString: message)
        if collector.exceeded { throw DownloadFailure("response larger than \(maximumBodySize) bytes") }
        guard result == Int32(MLPC_HTTP_ANSWERED) else {
            throw DownloadFailure(Self.describe(result: result, systemError: Int32(truncatingIfNeeded: systemError), detail: detail))
        }
        guard status == 200 else {
            throw DownloadFailure(status == 0 ? "no HTTP status in the response" : "HTTP \(status) \(Self.reasonPhrase(status))")
        }
        return collector.body
    }

    private static func open(_ names: [String], message: inout [CChar]) -> OpaquePointer? {
        let copies = names.map { strdup($0) }
        defer { copies.forEach { free($0) } }
        let pointers = copies.map { UnsafePointer<CChar>($0) }
        let capacity = message.count
        return mlpc_curl_open(pointers, pointers.count, &message, capacity)
    }

    /// The failure of a transfer that got no HTTP answer, from libcurl's result, the errno of a
    /// failed connect, and libcurl's message.
    static func describe(result: Int32, systemError: Int32, detail: String) -> String {
        let said = detail.isEmpty ? "libcurl error \(result)" : detail
        switch Int(result) {
        case Int(MLPC_HTTP_SETUP_FAILED): return "cannot start the download: \(said)"
        case Int(MLPC_CURLE_COULDNT_CONNECT):
            switch systemError {
            case ECONNREFUSED: return "connection refused"
            case ENETUNREACH, EHOSTUNREACH: return "network unreachable (offline?)"
            default: return "cannot connect (\(said))"
            }
        case Int(MLPC_CURLE_OPERATION_TIMEDOUT): return "timed out"
        case Int(MLPC_CURLE_COULDNT_RESOLVE_HOST): return "host not found (offline?)"
        case Int(MLPC_CURLE_COULDNT_RESOLVE_PROXY): return "proxy not found (offline?): \(said)"
        case Int(MLPC_CURLE_GOT_NOTHING): return "the server closed the connection without answering"
        case Int(MLPC_CURLE_SEND_ERROR), Int(MLPC_CURLE_RECV_ERROR): return "connection lost (\(said))"
        case Int(MLPC_CURLE_TOO_MANY_REDIRECTS): return "too many redirects"
        case Int(MLPC_CURLE_UNSUPPORTED_PROTOCOL), Int(MLPC_CURLE_URL_MALFORMAT): return "not an http(s) URL (\(said))"
        case Int(MLPC_CURLE_SSL_CONNECT_ERROR), Int(MLPC_CURLE_SSL_CERTPROBLEM), Int(MLPC_CURLE_SSL_CIPHER),
            Int(MLPC_CURLE_PEER_FAILED_VERIFICATION), Int(MLPC_CURLE_SSL_CACERT_BADFILE), Int(MLPC_CURLE_SSL_SHUTDOWN_FAILED),
            Int(MLPC_CURLE_SSL_CRL_BADFILE), Int(MLPC_CURLE_SSL_ISSUER_ERROR), Int(MLPC_CURLE_SSL_PINNEDPUBKEYNOTMATCH),
            Int(MLPC_CURLE_SSL_INVALIDCERTSTATUS):
            return "TLS failure: \(said)"
        default: return said
        }
    }

    /// RFC 9110's reason phrases for the statuses a file server gives; others by their class.
    static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 204: return "No Content"
        case 206: return "Partial Content"
        case 301: return "Moved Permanently"
        case 302: return "Found"
        case 303: return "See Other"
        case 304: return "Not Modified"
        case 307: return "Temporary Redirect"
        case 308: return "Permanent Redirect"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 407: return "Proxy Authentication Required"
        case 408: return "Request Timeout"
        case 410: return "Gone"
        case 416: return "Range Not Satisfiable"
        case 429: return "Too Many Requests"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        case 100..<200: return "Informational"
        case 200..<300: return "Success"
        case 300..<400: return "Redirection"
        case 400..<500: return "Client Error"
        case 500..<600: return "Server Error"
        default: return "Unknown Status"
        }
    }
}

/// Collects a response body up to `limit` bytes; libcurl's write callback (collectBody) fills it on
/// the thread that called mlpc_http_get.
private final class BodyCollector {
    let limit: Int
    var body: [UInt8] = []
    var exceeded = false

    init(limit: Int) { self.limit = limit }
}

/// Stops the transfer (returns 0 for a non-empty piece) once the body would pass the collector's limit.
private let collectBody: mlpc_body_sink = { bytes, count, context in
    guard let context else { return 0 }
    let collector = Unmanaged<BodyCollector>.fromOpaque(context).takeUnretainedValue()
    guard count <= collector.limit - collector.body.count else {
        collector.exceeded = true
        return 0
    }
    if let bytes, count > 0 {
        collector.body.append(contentsOf: UnsafeRawBufferPointer(start: bytes, count: count))
    }
    return count
}
