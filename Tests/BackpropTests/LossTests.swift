import Backprop
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
