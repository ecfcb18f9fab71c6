/// The processes that train one model together (data parallelism), as training needs them: this
/// process's rank, their number, and the collective operations every rank calls in the same order.
/// The MPI implementation is `MPIRanks` (module Ranks); a one-process run has none.
public protocol RankGroup: AnyObject {
    var rank: Int { get }
    var size: Int { get }
    /// Sums `count` values over every rank, in place (MPI_Allreduce): every rank gets the same sums.
    func sum(_ values: UnsafeMutablePointer<Float>, count: Int)
    func sum(_ values: UnsafeMutablePointer<Double>, count: Int)
    func sum(_ values: UnsafeMutablePointer<Int32>, count: Int)
    /// Rank `root`'s `count` bytes at `bytes` to every rank.
    func broadcast(_ bytes: UnsafeMutableRawPointer, count: Int, from root: Int)
    /// Every rank's `record` (the same length on every rank), in rank order.
    func gather(_ record: [UInt8]) -> [[UInt8]]
    /// Returns when every rank has called it.
    func barrier()
}

extension RankGroup {
    public var isFirst: Bool { rank == 0 }
}
