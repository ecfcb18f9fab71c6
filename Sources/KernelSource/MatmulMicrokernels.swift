// Written out in full (one accumulator variable per SIMD16 of the register block) so that the
// accumulators live in vector registers for the whole k loop; Swift does not keep an array or tuple of
// SIMD values in registers reliably. Each kernel computes an mr x nr block of C over kb steps:
//   a: packed A micro panel, element (r, p) at a[p * mr + r]
//   b: B micro panel, element (p, j) at b[p * ldb + j] (packed with ldb = nr, or read in place)
//   accumulate: start from C's current values (later k passes) instead of zero.
// Every output element is one fused multiply-add chain in order p = 0..<kb, whatever the block.

func microkernel8x32(
    _ kb: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ ldb: Int,
    _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ accumulate: Bool,
    _ epilogue: MatmulEpilogue, _ row: Int, _ col: Int
) {
    var c0_0 = SIMD16<Float>()
    var c0_1 = SIMD16<Float>()
    var c1_0 = SIMD16<Float>()
    var c1_1 = SIMD16<Float>()
    var c2_0 = SIMD16<Float>()
    var c2_1 = SIMD16<Float>()
    var c3_0 = SIMD16<Float>()
    var c3_1 = SIMD16<Float>()
    var c4_0 = SIMD16<Float>()
    var c4_1 = SIMD16<Float>()
    var c5_0 = SIMD16<Float>()
    var c5_1 = SIMD16<Float>()
    var c6_0 = SIMD16<Float>()
    var c6_1 = SIMD16<Float>()
    var c7_0 = SIMD16<Float>()
    var c7_1 = SIMD16<Float>()
    if accumulate {
        c0_0 = load16(c + 0 * ldc + 0)
        c0_1 = load16(c + 0 * ldc + 16)
        c1_0 = load16(c + 1 * ldc + 0)
        c1_1 = load16(c + 1 * ldc + 16)
        c2_0 = load16(c + 2 * ldc + 0)
        c2_1 = load16(c + 2 * ldc + 16)
        c3_0 = load16(c + 3 * ldc + 0)
        c3_1 = load16(c + 3 * ldc + 16)
        c4_0 = load16(c + 4 * ldc + 0)
        c4_1 = load16(c + 4 * ldc + 16)
        c5_0 = load16(c + 5 * ldc + 0)
        c5_1 = load16(c + 5 * ldc + 16)
        c6_0 = load16(c + 6 * ldc + 0)
        c6_1 = load16(c + 6 * ldc + 16)
        c7_0 = load16(c + 7 * ldc + 0)
        c7_1 = load16(c + 7 * ldc + 16)
    }
    var ap = a
    var bp = b
    var p = 0
    while p < kb {
        let b0 = load16(bp + 0)
        let b1 = load16(bp + 16)
        let a0 = SIMD16<Float>(repeating: ap[0])
        c0_0 = c0_0.addingProduct(a0, b0)
        c0_1 = c0_1.addingProduct(a0, b1)
        let a1 = SIMD16<Float>(repeating: ap[1])
        c1_0 = c1_0.addingProduct(a1, b0)
        c1_1 = c1_1.addingProduct(a1, b1)
        let a2 = SIMD16<Float>(repeating: ap[2])
        c2_0 = c2_0.addingProduct(a2, b0)
        c2_1 = c2_1.addingProduct(a2, b1)
        let a3 = SIMD16<Float>(repeating: ap[3])
        c3_0 = c3_0.addingProduct(a3, b0)
        c3_1 = c3_1.addingProduct(a3, b1)
        let a4 = SIMD16<Float>(repeating: ap[4])
        c4_0 = c4_0.addingProduct(a4, b0)
        c4_1 = c4_1.addingProduct(a4, b1)
        let a5 = SIMD16<Float>(repeating: ap[5])
        c5_0 = c5_0.addingProduct(a5, b0)
        c5_1 = c5_1.addingProduct(a5, b1)
        let a6 = SIMD16<Float>(repeating: ap[6])
        c6_0 = c6_0.addingProduct(a6, b0)
        c6_1 = c6_1.addingProduct(a6, b1)
        let a7 = SIMD16<Float>(repeating: ap[7])
        c7_0 = c7_0.addingProduct(a7, b0)
        c7_1 = c7_1.addingProduct(a7, b1)
        ap += 8
        bp += ldb
        p += 1
    }
    epilogue.apply(c0_0, c + 0 * ldc + 0, row + 0, col + 0, 16)
    epilogue.apply(c0_1, c + 0 * ldc + 16, row + 0, col + 16, 16)
    epilogue.apply(c1_0, c + 1 * ldc + 0, row + 1, col + 0, 16)
    epilogue.apply(c1_1, c + 1 * ldc + 16, row + 1, col + 16, 16)
    epilogue.apply(c2_0, c + 2 * ldc + 0, row + 2, col + 0, 16)
    epilogue.apply(c2_1, c + 2 * ldc + 16, row + 2, col + 16, 16)
    epilogue.apply(c3_0, c + 3 * ldc + 0, row + 3, col + 0, 16)
    epilogue.apply(c3_1, c + 3 * ldc + 16, row + 3, col + 16, 16)
    epilogue.apply(c4_0, c + 4 * ldc + 0, row + 4, col + 0, 16)
    epilogue.apply(c4_1, c + 4 * ldc + 16, row + 4, col + 16, 16)
    epilogue.apply(c5_0, c + 5 * ldc + 0, row + 5, col + 0, 16)
    epilogue.apply(c5_1, c + 5 * ldc + 16, row + 5, col + 16, 16)
    epilogue.apply(c6_0, c + 6 * ldc + 0, row + 6, col + 0, 16)
    epilogue.apply(c6_1, c + 6 * ldc + 16, row + 6, col + 16, 16)
    epilogue.apply(c7_0, c + 7 * ldc + 0, row + 7, col + 0, 16)
    epilogue.apply(c7_1, c + 7 * ldc + 16, row + 7, col + 16, 16)
}

func microkernel6x16(
    _ kb: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ ldb: Int,
    _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ accumulate: Bool,
    _ epilogue: MatmulEpilogue, _ row: Int, _ col: Int
) {
    var c0_0 = SIMD16<Float>()
    var c1_0 = SIMD16<Float>()
    var c2_0 = SIMD16<Float>()
    var c3_0 = SIMD16<Float>()
    var c4_0 = SIMD16<Float>()
    var c5_0 = SIMD16<Float>()
    if accumulate {
        c0_0 = load16(c + 0 * ldc + 0)
        c1_0 = load16(c + 1 * ldc + 0)
        c2_0 = load16(c + 2 * ldc + 0)
        c3_0 = load16(c + 3 * ldc + 0)
        c4_0 = load16(c + 4 * ldc + 0)
        c5_0 = load16(c + 5 * ldc + 0)
    }
    var ap = a
    var bp = b
    var p = 0
    while p < kb {
        let b0 = load16(bp + 0)
        let a0 = SIMD16<Float>(repeating: ap[0])
        c0_0 = c0_0.addingProduct(a0, b0)
        let a1 = SIMD16<Float>(repeating: ap[1])
        c1_0 = c1_0.addingProduct(a1, b0)
        let a2 = SIMD16<Float>(repeating: ap[2])
        c2_0 = c2_0.addingProduct(a2, b0)
        let a3 = SIMD16<Float>(repeating: ap[3])
        c3_0 = c3_0.addingProduct(a3, b0)
        let a4 = SIMD16<Float>(repeating: ap[4])
        c4_0 = c4_0.addingProduct(a4, b0)
        let a5 = SIMD16<Float>(repeating: ap[5])
        c5_0 = c5_0.addingProduct(a5, b0)
        ap += 6
        bp += ldb
        p += 1
    }
    epilogue.apply(c0_0, c + 0 * ldc + 0, row + 0, col + 0, 16)
    epilogue.apply(c1_0, c + 1 * ldc + 0, row + 1, col + 0, 16)
    epilogue.apply(c2_0, c + 2 * ldc + 0, row + 2, col + 0, 16)
    epilogue.apply(c3_0, c + 3 * ldc + 0, row + 3, col + 0, 16)
    epilogue.apply(c4_0, c + 4 * ldc + 0, row + 4, col + 0, 16)
    epilogue.apply(c5_0, c + 5 * ldc + 0, row + 5, col + 0, 16)
}

func microkernel4x16(
    _ kb: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ ldb: Int,
    _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ accumulate: Bool,
    _ epilogue: MatmulEpilogue, _ row: Int, _ col: Int
) {
    var c0_0 = SIMD16<Float>()
    var c1_0 = SIMD16<Float>()
    var c2_0 = SIMD16<Float>()
    var c3_0 = SIMD16<Float>()
    if accumulate {
        c0_0 = load16(c + 0 * ldc + 0)
        c1_0 = load16(c + 1 * ldc + 0)
        c2_0 = load16(c + 2 * ldc + 0)
        c3_0 = load16(c + 3 * ldc + 0)
    }
    var ap = a
    var bp = b
    var p = 0
    while p < kb {
        let b0 = load16(bp + 0)
        let a0 = SIMD16<Float>(repeating: ap[0])
        c0_0 = c0_0.addingProduct(a0, b0)
        let a1 = SIMD16<Float>(repeating: ap[1])
        c1_0 = c1_0.addingProduct(a1, b0)
        let a2 = SIMD16<Float>(repeating: ap[2])
        c2_0 = c2_0.addingProduct(a2, b0)
        let a3 = SIMD16<Float>(repeating: ap[3])
        c3_0 = c3_0.addingProduct(a3, b0)
        ap += 4
        bp += ldb
        p += 1
    }
    epilogue.apply(c0_0, c + 0 * ldc + 0, row + 0, col + 0, 16)
    epilogue.apply(c1_0, c + 1 * ldc + 0, row + 1, col + 0, 16)
    epilogue.apply(c2_0, c + 2 * ldc + 0, row + 2, col + 0, 16)
    epilogue.apply(c3_0, c + 3 * ldc + 0, row + 3, col + 0, 16)
}
