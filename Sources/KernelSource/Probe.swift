public func kernelProbe(_ x: SIMD16<Float>, _ y: SIMD16<Float>, _ z: SIMD16<Float>) -> SIMD16<Float> { z.addingProduct(x, y) }
