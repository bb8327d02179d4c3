@_spi(Internals) @testable import Backprop
import BackpropTestSupport
import Foundation
import Testing

@Suite("SIMD kernels")
struct VectorMathTests {
    /// The SIMD exponential against `Double` `exp` at 2 million points across [−87, 88]: at most 3·10⁻⁷ relative.
    @Test func exponentialIsAccurate() {
        var worst = 0.0, worstAt: Float = 0
        let count = 2_000_000
        var i = 0
        while i < count {
            var x = SIMD8<Float>()
            for lane in 0..<8 { x[lane] = -87 + 175 * Float(i + lane) / Float(count) }
            let y = exponential(x)
            for lane in 0..<8 {
                let exact = Foundation.exp(Double(x[lane]))
                let error = abs(Double(y[lane]) - exact) / exact
                if error > worst { worst = error; worstAt = x[lane] }
            }
            i += 8
        }
        #expect(worst < 3e-7, "max relative error \(worst) at \(worstAt)")
        // Outside the range: clamped, finite, positive.
        let extremes = exponential(SIMD8(-1000, -88, 89, 1000, 0, 1, -1, .nan))
        #expect(extremes[0] > 0 && extremes[3].isFinite && extremes[4] == 1)
        #expect(abs(extremes[5] - Float(M_E)) < 1e-6)
    }

    @Test func squareRootIsAccurate() {
        var generator = SeededGenerator(seed: 1)
        var worst = 0.0
        for _ in 0..<100_000 {
            var v = SIMD8<Float>()
            for lane in 0..<8 { v[lane] = Float(pow(10, 40 * generator.nextUniform() - 30)) }
            let root = squareRoot(v)
            for lane in 0..<8 {
                let exact = Double(v[lane]).squareRoot()
                worst = max(worst, abs(Double(root[lane]) - exact) / exact)
            }
        }
        #expect(worst < 1e-7, "max relative error \(worst)")  // correctly rounded: ≤ half an ulp
        #expect(squareRoot(SIMD8(repeating: 0)) == SIMD8(repeating: 0))
    }

    @Test func kernelsHandleTails() {
        for n in [1, 7, 8, 9, 17] {
            let x = randomMatrix(1, n, seed: UInt64(n), in: -5...5)
            let y = Matrix(rows: 1, columns: n)
            exponentialForward(output: y, input: x)
            expectClose(y.scalars, x.scalars.map { Foundation.exp(Double($0)) }, relative: 3e-7, absolute: 0)
            let s = Sigmoid()(x)
            expectClose(s.scalars, x.scalars.map { 1 / (1 + Foundation.exp(-Double($0))) }, relative: 3e-7, absolute: 1e-9)
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
