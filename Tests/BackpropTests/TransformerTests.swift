@_spi(Internals) @testable import Backprop
import BackpropTestSupport
import Foundation
import Testing

/// Token ids as a matrix of whole numbers in `0..<vocabulary`.
func tokenMatrix(_ rows: Int, _ steps: Int, vocabulary: Int, seed: UInt64) -> Matrix {
    var generator = SeededGenerator(seed: seed)
    return Matrix(rows: rows, columns: steps, values: (0..<(rows * steps)).map { _ in Float(generator.nextIndex(below: vocabulary)) })
}

/// Scales every parameter of `layer` up from GPT's 0.02 so that the finite differences see signal.
func spreadParameters(_ layer: some Layer, seed: UInt64, scale: Float = 0.5) {
    var generator = SeededGenerator(seed: seed)
    for tensor in layer.parameters {
        for i in 0..<tensor.count { tensor.pointer[i] += scale * Float(2 * generator.nextUniform() - 1) }
    }
}

@Suite("Transformer layers: finite differences")
struct TransformerGradientTests {
    @Test(arguments: [false, true]) func layerNorm(hasBias: Bool) {
        let layer = LayerNorm(width: 6, hasBias: hasBias)
        spreadParameters(layer, seed: 1)
        let result = gradientCheck(layer, input: randomMatrix(3, 12, seed: 2), epsilon: 1e-2)
        #expect(result.passes(tolerance: 2e-2), "\(result)")
        #expect(result.checkedCount == 36 + (hasBias ? 12 : 6))
    }

    @Test(arguments: [1, 2, 4]) func attention(heads: Int) {
        let layer = MultiHeadAttention(width: 8, heads: heads, seed: 3)
        spreadParameters(layer, seed: 4)
        let result = gradientCheck(layer, input: randomMatrix(2, 5 * 8, seed: 5), epsilon: 1e-2)
        #expect(result.passes(tolerance: 2e-2), "\(result)")
        #expect(result.checkedCount == 80 + 4 * 64)
    }

    /// Step t's output depends on steps 0…t only: changing the last step changes no earlier output.
    @Test func attentionIsCausal() {
        let layer = MultiHeadAttention(width: 8, heads: 2, seed: 3)
        spreadParameters(layer, seed: 4)
        let x = randomMatrix(1, 4 * 8, seed: 6)
        let before = layer(x)
        for j in 24..<32 { x.pointer[j] += 1 }
        let after = layer(x)
        #expect(Array(before.scalars[0..<24]) == Array(after.scalars[0..<24]))
        #expect(Array(before.scalars[24...]) != Array(after.scalars[24...]))
    }

    @Test(arguments: [false, true]) func block(hasBias: Bool) {
        let layer = TransformerBlock(width: 8, heads: 2, hasBias: hasBias, seed: 7)
        spreadParameters(layer, seed: 8, scale: 0.3)
        let result = gradientCheck(layer, input: randomMatrix(2, 4 * 8, seed: 9), epsilon: 1e-2)
        #expect(result.passes(tolerance: 3e-2), "\(result)")
    }

    @Test func embeddings() {
        let tokens = Embedding(vocabularySize: 5, width: 3, seed: 1)
        let result = gradientCheck(tokens, input: tokenMatrix(2, 4, vocabulary: 5, seed: 2), checksInput: false)
        #expect(result.passes(tolerance: 1e-2) && result.checkedCount == 15, "\(result)")
        let positions = PositionEmbedding(context: 6, width: 3, seed: 1)
        let both = gradientCheck(positions, input: randomMatrix(2, 4 * 3, seed: 3))
        #expect(both.passes(tolerance: 1e-2) && both.checkedCount == 24 + 18, "\(both)")
    }

    @Test func gpt() {
        let model = GPT(vocabularySize: 7, context: 5, width: 8, heads: 2, layers: 2, seed: 1)
        spreadParameters(model, seed: 2, scale: 0.3)
        let result = gradientCheck(model, input: tokenMatrix(2, 4, vocabulary: 7, seed: 3), epsilon: 1e-2, checksInput: false)
        #expect(result.passes(tolerance: 3e-2), "\(result)")
        #expect(result.checkedCount == model.parameterCount)
    }
}
