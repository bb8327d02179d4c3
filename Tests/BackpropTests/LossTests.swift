@_spi(Internals) @testable import Backprop
import BackpropTestSupport
import Foundation
import Testing

@Suite("Losses")
struct LossTests {
    @Test func crossEntropyIsStableForHugeLogits() {
        let logits = Matrix([[1000, -1000, 0], [-1000, 1000, 999]])
        let gradient = Matrix(rows: 2, columns: 3)
        let loss = CrossEntropy(reduction: .sum).lossAndGradient(gradient: gradient, output: logits,
                                                                 targets: oneHot([0, 2], classCount: 3))
        // Row 0: the label's logit dominates, loss ≈ 0. Row 1: lse = 1000 + log(1 + e⁻¹), loss = lse − 999.
        let expected = 1 + log1p(exp(-1.0))
        #expect(loss.isFinite && abs(Double(loss) - expected) < 1e-4, "\(loss) vs \(expected)")
        #expect(gradient.scalars.allSatisfy { $0.isFinite })
        // softmax(row 1) = [0, p, 1 − p] with p = 1/(1+e⁻¹), minus the one-hot of class 2.
        let p = 1 / (1 + exp(-1.0))
        expectClose(gradient.scalars, [0, 0, 0, 0, p, -p], absolute: 1e-6)
    }

    @Test func binaryCrossEntropyIsStableForHugeLogits() {
        let logits = Matrix([[1000, -1000], [-1000, 1000]])
        let targets = Matrix([[1, 0], [1, 0]])
        let gradient = Matrix(rows: 2, columns: 2)
        let loss = BinaryCrossEntropy(reduction: .sum).lossAndGradient(gradient: gradient, output: logits, targets: targets)
        #expect(loss == 2000)  // the two wrong answers cost |z| each; the right ones cost e⁻¹⁰⁰⁰ ≈ 0
        #expect(gradient.scalars == [0, 0, -1, 1])
    }

    /// Every element's loss and gradient against the formula in `Double`, over logits from −100 to 100 (the
    /// vectorised kernel's own exp and log), summed over up to three threads.
    @Test func binaryCrossEntropyMatchesTheFormulaInDouble() {
        let count = 200_000
        let logits = Matrix(rows: 1, columns: count), targets = Matrix(rows: 1, columns: count)
        for i in 0..<count {
            logits[0, i] = -100 + 200 * Float(i) / Float(count - 1)
            targets[0, i] = [0, 0.3, 1][i % 3]
        }
        var expectedTotal = 0.0
        var expectedGradient = [Double](repeating: 0, count: count)
        for i in 0..<count {
            let z = Double(logits[0, i]), t = Double(targets[0, i])
            expectedTotal += max(z, 0) - z * t + log1p(exp(-abs(z)))
            expectedGradient[i] = 1 / (1 + exp(-z)) - t
        }
        for threads in [1, 3] {
            let gradient = Matrix(rows: 1, columns: count)
            let total = Parallel.withThreadCount(threads) {
                BinaryCrossEntropy(reduction: .sum).sumOfLosses(output: logits, targets: targets, gradient: gradient,
                                                                gradientScale: 1)
            }
            #expect(abs(total - expectedTotal) <= 1e-6 * expectedTotal, "\(threads) threads: \(total) vs \(expectedTotal)")
            expectClose(gradient.scalars, expectedGradient, relative: 1e-6, absolute: 1e-7, "\(threads) threads")
            // Each element's loss, through one-element calls (no cancellation in a sum to hide errors).
            for i in stride(from: 0, to: count, by: 97) {
                let one = BinaryCrossEntropy(reduction: .sum).sumOfLosses(
                    output: logits.reshaped(rows: count, columns: 1).rows(i..<(i + 1)),
                    targets: targets.reshaped(rows: count, columns: 1).rows(i..<(i + 1)), gradient: nil, gradientScale: 1)
                let z = Double(logits[0, i]), t = Double(targets[0, i])
                let exact = max(z, 0) - z * t + log1p(exp(-abs(z)))
                #expect(abs(one - exact) <= 2e-7 * abs(exact) + 1e-12, "z \(z), t \(t): \(one) vs \(exact)")
            }
        }
    }

    @Test func knownValues() {
        // CE of uniform logits over K classes is log K; mean over rows.
        #expect(abs(crossEntropy(logits: Matrix(rows: 3, columns: 4), labels: [0, 1, 3]) - logf(4)) < 1e-6)
        // BCE at z = 0 is log 2 per output; 2 outputs per sample, mean over samples.
        #expect(abs(binaryCrossEntropy(logits: Matrix(rows: 3, columns: 2), targets: Matrix(rows: 3, columns: 2)) - 2 * logf(2)) < 1e-6)
        // MSE: per-sample sums of squares, mean over samples: ((1 + 4) + (9 + 0)) / 2.
        let mse = meanSquaredError(predictions: Matrix([[1, 2], [3, 0]]), targets: Matrix(rows: 2, columns: 2))
        #expect(mse == 7)
        #expect(meanSquaredError(predictions: Matrix([[1, 2], [3, 0]]), targets: Matrix(rows: 2, columns: 2), reduction: .sum) == 14)
        let p = softmax(Matrix([[0, log(3)]]))
        expectClose(p.scalars, [0.25, 0.75])
    }

    @Test func meanGradientIsSumGradientOverN() {
        let logits = randomMatrix(8, 5, seed: 1, in: -2...2)
        let targets = oneHot([0, 1, 2, 3, 4, 0, 1, 2], classCount: 5)
        let mean = Matrix(rows: 8, columns: 5), sum = Matrix(rows: 8, columns: 5)
        _ = CrossEntropy().lossAndGradient(gradient: mean, output: logits, targets: targets)
        _ = CrossEntropy(reduction: .sum).lossAndGradient(gradient: sum, output: logits, targets: targets)
        expectClose(mean.scalars, sum.scalars.map { Double($0) / 8 })
    }
}
