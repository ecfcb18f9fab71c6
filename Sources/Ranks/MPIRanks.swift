import CMPILoader
import Execution
import Foundation

/// The ranks of an `mpirun` job over Open MPI, loaded only when this process is one of them: Open
/// MPI's launcher sets OMPI_COMM_WORLD_SIZE and OMPI_COMM_WORLD_RANK in every rank's environment, and
/// without them mlpc neither loads nor initializes MPI. Every call is on the thread that joined (MPI's
/// "funneled" level: the worker pool's threads make none). A failed MPI call ends the whole job
/// (Open MPI's default error handler), so the calls here return nothing to check.
public final class MPIRanks: RankGroup {
    public let rank: Int
    public let size: Int
    private var finished = false

    /// The environment variable Open MPI's launcher sets in every rank.
    public static let sizeVariable = "OMPI_COMM_WORLD_SIZE"

    /// Why joining failed: the message names what is missing.
    public struct JoinError: Error, CustomStringConvertible {
        public var description: String
    }

    /// The job's size from the launcher's environment: nil outside mpirun (or with one rank, which
    /// trains as a plain process and needs no MPI).
    public static func launchedSize(environment: [String: String]) throws -> Int? {
        guard let text = environment[sizeVariable] else { return nil }
        guard let size = Int(text), size >= 1 else {
            throw JoinError(description: "\(sizeVariable) is \"\(text)\": not a number of ranks (is this process started by Open MPI's mpirun?)")
        }
        return size > 1 ? size : nil
    }

    /// Loads libmpi and initializes MPI when this process is a rank of a job of more than one; nil
    /// otherwise, without touching MPI.
    public static func joinIfLaunched(environment: [String: String]) throws -> MPIRanks? {
        guard let expected = try launchedSize(environment: environment) else { return nil }
        var error = [CChar](repeating: 0, count: 512)
        guard mlpc_mpi_init(&error, error.count) == 0 else {
            let reason = String(cString: error)
            throw JoinError(
                description: "mlpc runs under mpirun (\(sizeVariable)=\(expected)) but cannot start MPI with Open MPI's \(String(cString: mlpc_mpi_library_name())): \(reason); install Open MPI (scripts/setup installs openmpi-bin on Debian and Ubuntu)")
        }
        let ranks = MPIRanks(rank: Int(mlpc_mpi_rank()), size: Int(mlpc_mpi_size()))
        guard ranks.size == expected else {
            throw JoinError(description: "MPI says the job has \(ranks.size) ranks, \(sizeVariable) says \(expected)")
        }
        return ranks
    }

    init(rank: Int, size: Int) {
        self.rank = rank
        self.size = size
    }

    public func sum(_ values: UnsafeMutablePointer<Float>, count: Int) {
        check(mlpc_mpi_allreduce_sum(values, count, MLPC_MPI_FLOAT), "MPI_Allreduce")
    }

    public func sum(_ values: UnsafeMutablePointer<Double>, count: Int) {
        check(mlpc_mpi_allreduce_sum(values, count, MLPC_MPI_DOUBLE), "MPI_Allreduce")
    }

    public func sum(_ values: UnsafeMutablePointer<Int32>, count: Int) {
        check(mlpc_mpi_allreduce_sum(values, count, MLPC_MPI_INT32), "MPI_Allreduce")
    }

    public func broadcast(_ bytes: UnsafeMutableRawPointer, count: Int, from root: Int) {
        check(mlpc_mpi_broadcast(bytes, count, Int32(root)), "MPI_Bcast")
    }

    public func gather(_ record: [UInt8]) -> [[UInt8]] {
        var all = [UInt8](repeating: 0, count: record.count * size)
        record.withUnsafeBytes { send in
            all.withUnsafeMutableBytes { receive in
                check(mlpc_mpi_allgather(send.baseAddress, record.count, receive.baseAddress), "MPI_Allgather")
            }
        }
        return (0..<size).map { Array(all[($0 * record.count)..<(($0 + 1) * record.count)]) }
    }

    public func barrier() {
        check(mlpc_mpi_barrier(), "MPI_Barrier")
    }

    /// MPI_Finalize, when every rank reaches the end together (a finished run, or a stop they agreed on).
    /// A rank that fails alone exits without it: mpirun then ends the others.
    public func finish() {
        guard !finished else { return }
        finished = true
        _ = mlpc_mpi_finalize()
    }

    private func check(_ status: Int32, _ call: String) {
        guard status != 0 else { return }
        FileHandle.standardError.write(Data("mlpc: error: rank \(rank): \(call) failed (status \(status)); ending the job\n".utf8))
        mlpc_mpi_abort(1)
    }
}
