#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CSIMD

/// A decoder-only transformer language model (GPT-2's architecture without biases, as nanoGPT and
/// `../shared/peers/torch_gpt.py` build it): token and learned position embeddings, `L` pre-norm
/// ``TransformerBlock``s, a final ``LayerNorm``, and an output head tied to the token embedding:
///
///     H₀ = E[X] + P[0..<T],  Hₗ = Blockₗ(Hₗ₋₁),  Z = LN(H_L),  logits = Z·Eᵀ
///
/// Backward: `dE += dlogitsᵀ·Z` (the head) and `dE[X[n, t]] += dH₀[n, t]` (the embedding), `dP[t] += Σₙ dH₀[n, t]`,
/// `dZ = dlogits·E`, then back through `LN` and the blocks (their passes).
///
/// Shapes: `X` is `N × T` token ids (whole numbers as `Float`s, `T ≤ context`), the output `N × (T·V)`: step `t`'s
/// logits over the `V` tokens at columns `t·V ..< (t+1)·V`. The tensors are named as the state_dict of
/// `torch_gpt.py`'s `GPT`: `tok.weight`, `pos.weight`, `blocks.{l}.…`, `ln.weight`; put the layer in a ``Network``
/// under the name `""` to keep those names at the top level (``GPTModel`` does).
public struct GPT: Layer {
    /// `V`, the tokens.
    public let vocabularySize: Int
    /// The most steps a sequence may have (the rows of the position embedding).
    public let context: Int
    /// `C`, the features of each step.
    public let width: Int
    /// `H`, the heads of each block's attention.
    public let heads: Int
    /// The token embedding `E` (also the output head).
    public private(set) var tokenEmbedding: Embedding
    /// The position embedding `P`.
    public private(set) var positionEmbedding: PositionEmbedding
    /// The blocks, first to last.
    public private(set) var blocks: [TransformerBlock]
    /// The final normalization.
    public private(set) var finalNorm: LayerNorm

    /// `L`, the blocks.
    public var layerCount: Int { blocks.count }
    /// Whether the layer normalizations have a shift.
    public var hasBias: Bool { finalNorm.hasBias }

    /// A model of `layers` blocks, drawn as GPT-2 draws it (``initialize(_:using:)``) from a generator seeded with
    /// `seed`. Stops with a message if `heads` does not divide `width` or a size is not positive.
    public init(vocabularySize: Int, context: Int, width: Int, heads: Int, layers: Int, hasBias: Bool = false, seed: UInt64 = 0) {
        precondition(vocabularySize > 0 && context > 0 && width > 0 && layers > 0 && heads > 0,
                     "GPT: sizes must be positive, got vocabulary \(vocabularySize), context \(context), width \(width), \(heads) heads, \(layers) layers")
        precondition(width % heads == 0, "GPT: \(heads) heads do not divide a width of \(width)")
        (self.vocabularySize, self.context, self.width, self.heads) = (vocabularySize, context, width, heads)
        tokenEmbedding = Embedding(vocabularySize: vocabularySize, width: width, seed: 0)
        positionEmbedding = PositionEmbedding(context: context, width: width, seed: 0)
        blocks = (0..<layers).map { _ in TransformerBlock(width: width, heads: heads, hasBias: hasBias, seed: 0) }
        finalNorm = LayerNorm(width: width, hasBias: hasBias)
        var generator = SeededGenerator(seed: seed)
        initialize(.normal(standardDeviation: 0.02), using: &generator)
    }

    public var children: [(name: String, layer: any Layer)] {
        [("tok", tokenEmbedding), ("pos", positionEmbedding)] + blocks.enumerated().map { ("blocks.\($0.offset)", $0.element) }
            + [("ln", finalNorm)]
    }

    public func outputSize(forInputSize inputSize: Int) -> Int {
        precondition(inputSize >= 1 && inputSize <= context, "GPT: \(inputSize) steps do not fit a context of \(context)")
        return inputSize * vocabularySize
    }
    public func outputSizeIfAccepted(forInputSize inputSize: Int) -> Int? {
        inputSize >= 1 && inputSize <= context ? inputSize * vocabularySize : nil
    }

    public mutating func bind(parameters: [Matrix], gradients: [Matrix]) {
        rebind("GPT", current: self.parameters, parameters: parameters, gradients: gradients)
        var index = 0
        func take(_ count: Int) -> ([Matrix], [Matrix]) {
            defer { index += count }
            return (Array(parameters[index..<(index + count)]), Array(gradients[index..<(index + count)]))
        }
        var part = take(1)
        tokenEmbedding.bind(parameters: part.0, gradients: part.1)
        part = take(1)
        positionEmbedding.bind(parameters: part.0, gradients: part.1)
        for l in blocks.indices {
            part = take(blocks[l].parameters.count)
            blocks[l].bind(parameters: part.0, gradients: part.1)
        }
        part = take(finalNorm.parameters.count)
        finalNorm.bind(parameters: part.0, gradients: part.1)
    }

    /// GPT-2's initialization: every matrix (embeddings included) from `N(0, σ²)`, the blocks' output projections
    /// (`proj`, `down`) from `N(0, σ²/(2L))`, the normalizations at `γ = 1`, `β = 0`; `σ` is the initializer's for
    /// `.normal(σ)`, otherwise 0.02. Tensor by tensor in state_dict order.
    public func initialize(_ initializer: Initializer, using generator: inout SeededGenerator) {
        var sigma: Float = 0.02
        if case .normal(let given) = initializer { sigma = given }
        let normal = Initializer.normal(standardDeviation: sigma)
        let scaled = Initializer.normal(standardDeviation: sigma / Float(2 * blocks.count).squareRoot())
        tokenEmbedding.initialize(normal, using: &generator)
        positionEmbedding.initialize(normal, using: &generator)
        for block in blocks {
            block.ln1.initialize(normal, using: &generator)
            normal.fill(block.attention.qkvWeight, fanIn: width, fanOut: 3 * width, using: &generator)
            scaled.fill(block.attention.projectionWeight, fanIn: width, fanOut: width, using: &generator)
            block.ln2.initialize(normal, using: &generator)
            normal.fill(block.upWeight, fanIn: width, fanOut: 4 * width, using: &generator)
            scaled.fill(block.downWeight, fanIn: 4 * width, fanOut: width, using: &generator)
        }
        finalNorm.initialize(normal, using: &generator)
    }

    // MARK: - Scratch

    /// `H₀ … H_L` and each block's scratch, `Z` and its statistics; for the backward pass `dZ` and two `dH`.
    public func scratchCount(rows: Int, inputSize steps: Int, backward: Bool) -> Int {
        let m = rows * steps, blockScratch = blocks[0].scratchCount(rows: rows, inputSize: steps * width, backward: backward)
        return (blocks.count + 1) * m * width + blocks.count * blockScratch + m * width + 2 * m + (backward ? 3 * m * width : 0)
    }

    /// The scratch laid out for one call (views made on demand, so that a pass allocates no arrays).
    private struct Scratch {
        let context: LayerContext, rows: Int, steps: Int, width: Int, blockScratch: Int, layers: Int
        var m: Int { rows * steps }
        /// `Hₗ`, `rows × steps·C`, for `l` in `0...L`.
        func state(_ l: Int) -> Matrix { context.scratch(rows: rows, columns: steps * width, offset: l * m * width) }
        /// Block `l`'s scratch.
        func block(_ l: Int) -> LayerContext {
            context.with(scratch: context.scratch(rows: 1, columns: blockScratch, offset: (layers + 1) * m * width + l * blockScratch))
        }
        var end: Int { (layers + 1) * m * width + layers * blockScratch }
        var normalized: Matrix { context.scratch(rows: m, columns: width, offset: end) }
        var norm: LayerContext { context.with(scratch: context.scratch(rows: 1, columns: 2 * m, offset: end + m * width)) }
        var dNormalized: Matrix { context.scratch(rows: m, columns: width, offset: end + m * width + 2 * m) }
        var dStates: (Matrix, Matrix) {
            (context.scratch(rows: rows, columns: steps * width, offset: end + 2 * m * width + 2 * m),
             context.scratch(rows: rows, columns: steps * width, offset: end + 3 * m * width + 2 * m))
        }
    }

    private func views(_ context: LayerContext, rows: Int, steps: Int) -> Scratch {
        Scratch(context: context, rows: rows, steps: steps, width: width,
                blockScratch: blocks[0].scratchCount(rows: rows, inputSize: steps * width, backward: context.scratchIncludesBackward),
                layers: blocks.count)
    }

    // MARK: - Passes

    /// `logits = LN(Blocks(E[X] + P))·Eᵀ`; stops with a message for an input element that is not a token id.
    public func forward(output: Matrix, input: Matrix, context: LayerContext) {
        let steps = input.columns, m = input.rows * steps
        precondition(steps >= 1 && steps <= self.context && output.rows == input.rows && output.columns == steps * vocabularySize,
                     "GPT.forward: input \(input.shapeDescription) and output \(output.shapeDescription) are not N × T ids (T ≤ \(self.context)) and N × T·\(vocabularySize) logits")
        checkTokenIDs(input, below: vocabularySize, "GPT.forward")
        let s = views(context, rows: input.rows, steps: steps)
        bp_embedding(s.state(0).pointer, input.pointer, tokenEmbedding.weight.pointer, positionEmbedding.weight.pointer,
                     input.rows, steps, width)
        for l in blocks.indices {
            blocks[l].forward(output: s.state(l + 1), input: s.state(l), context: s.block(l))
        }
        finalNorm.forward(output: s.normalized, input: s.state(blocks.count).reshaped(rows: m, columns: width), context: s.norm)
        gemm(output.reshaped(rows: m, columns: vocabularySize), s.normalized, tokenEmbedding.weight, transposeB: true)
    }

    /// Back through the head, the normalization, the blocks and the embeddings; `dX`, if asked, is zero.
    public func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix, context: LayerContext) {
        let steps = input.columns, m = input.rows * steps
        precondition(dOutput.rows == input.rows && dOutput.columns == steps * vocabularySize,
                     "GPT.backward: dOutput \(dOutput.shapeDescription) does not fit input \(input.shapeDescription) and \(vocabularySize) tokens")
        precondition(context.scratchIncludesBackward, "GPT.backward: the scratch was planned without room for the backward pass")
        let s = views(context, rows: input.rows, steps: steps)
        let dLogits = dOutput.reshaped(rows: m, columns: vocabularySize)
        gemm(tokenEmbedding.weightGradient, dLogits, s.normalized, transposeA: true, beta: 1)
        gemm(s.dNormalized, dLogits, tokenEmbedding.weight)
        var (dAbove, dBelow) = s.dStates
        finalNorm.backward(dInput: dAbove.reshaped(rows: m, columns: width), dOutput: s.dNormalized,
                           input: s.state(blocks.count).reshaped(rows: m, columns: width), context: s.norm, accumulate: false)
        for l in blocks.indices.reversed() {
            blocks[l].backward(dInput: dBelow, dOutput: dAbove, input: s.state(l), output: s.state(l + 1), context: s.block(l))
            swap(&dAbove, &dBelow)
        }
        bp_embedding_backward(tokenEmbedding.weightGradient.pointer, positionEmbedding.weightGradient.pointer, input.pointer,
                              dAbove.pointer, input.rows, steps, width)
        dInput?.fill(0)
    }
}
