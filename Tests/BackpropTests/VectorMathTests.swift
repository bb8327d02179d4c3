@_spi(Internals) @testable import Backprop
import BackpropTestSupport
import Foundation
import Testing

@Suite("Element-wise kernels")
struct VectorMathTests {
    /// The C kernels' vector loops and their scalar tails agree with the definitions for lengths around the vector
    /// width.
    @Test func kernelsHandleTails() {
        for n in [1, 7, 8, 9, 17] {
            let x = randomMatrix(1, n, seed: UInt64(n), in: -5...5)
            let s = Sigmoid()(x)
            expectClose(s.scalars, x.scalars.map { 1 / (1 + Foundation.exp(-Double($0))) }, relative: 3e-7, absolute: 1e-9)
            let t = Tanh()(x)
            expectClose(t.scalars, x.scalars.map { Foundation.tanh(Double($0)) }, relative: 5e-7, absolute: 1e-9)
            let squares = x.scalars.reduce(0.0) { $0 + Double($1) * Double($1) }
            #expect(abs(sumOfSquares(x) - squares) <= 1e-6 * squares)
        }
    }
}

@Suite("Floating-point mode")
struct FloatingPointModeTests {
    @Test func subnormalsAreFlushedInsideAndRestoredAfter() {
        let tiny = Float.leastNormalMagnitude
        func half(_ x: Float) -> Float { x / 2 }  // a subnormal result under IEEE rules
        #expect(half(tiny) > 0)
        #if arch(x86_64)
        #expect(withSubnormalsFlushedToZero { half(tiny) } == 0)
        #endif
        #expect(half(tiny) > 0, "the previous mode is restored")
    }
}
