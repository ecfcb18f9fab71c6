// Unaligned SIMD loads and stores: the arena guarantees no alignment beyond Float's, and the cost of an
// unaligned access that happens to be aligned is nil on the CPUs these kernels target.

@inline(__always)
func load16(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
}

@inline(__always)
func load16(_ p: UnsafeMutablePointer<Float>) -> SIMD16<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
}

@inline(__always)
func store16(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self)
}

/// The first `lanes` floats at p, zeros after them; for ragged ends of rows.
@inline(__always)
func loadPartial16(_ p: UnsafePointer<Float>, _ lanes: Int) -> SIMD16<Float> {
    var v = SIMD16<Float>()
    for i in 0..<lanes { v[i] = p[i] }
    return v
}

@inline(__always)
func storePartial16(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>, _ lanes: Int) {
    for i in 0..<lanes { p[i] = v[i] }
}

/// The first `lanes` (1...16) floats at p, zeros after them; whole vectors when lanes is 16.
@inline(__always)
func loadLanes(_ p: UnsafePointer<Float>, _ lanes: Int) -> SIMD16<Float> {
    lanes == 16 ? load16(p) : loadPartial16(p, lanes)
}

/// The first `lanes` (1...16) lanes of v at p; a whole vector when lanes is 16.
@inline(__always)
func storeLanes(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>, _ lanes: Int) {
    if lanes == 16 { store16(v, p) } else { storePartial16(v, p, lanes) }
}
