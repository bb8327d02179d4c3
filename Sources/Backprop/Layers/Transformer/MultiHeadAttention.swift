import CSIMD

/// Causal multi-head self-attention with one fused query/key/value projection and an output projection, no biases
/// (GPT-2's and nanoGPT's `CausalSelfAttention`). For each sequence `X` (`T × C`) and `H` heads of `D = C/H`:
///
///     [Q | K | V] = X·W_qkv                                    (T × 3C; head h: columns h·D ..< (h+1)·D of each)
///     Pₕ = softmax(Qₕ·Kₕᵀ / √D + M)                            (T × T; M is −∞ above the diagonal: step t sees 0…t)
///     A = [P₁·V₁ | … | P_H·V_H],  Y = A·W_proj                 (T × C)
///
/// Backward, per head, with `dA = dY·W_projᵀ`: `dVₕ = Pₕᵀ·dAₕ`, `dPₕ = dAₕ·Vₕᵀ`, `dSₕ = Pₕ ∘ (dPₕ − rowsum(dPₕ ∘ Pₕ))/√D`,
/// `dQₕ = dSₕ·Kₕ`, `dKₕ = dSₕᵀ·Qₕ`; then `dW_proj += Aᵀ·dY`, `dW_qkv += Xᵀ·d[Q | K | V]`, `dX = d[Q | K | V]·W_qkvᵀ`.
/// The products with `W` go through sgemm; the attention itself is one fused kernel per (sequence, head) pair
/// (`bp_attention`), which computes only the lower triangle and is split between the threads by pairs. The backward
/// pass overwrites the saved `P` with `dS`: run it once per forward pass.
///
/// PyTorch: `qkv = nn.Linear(C, 3C, bias=False)`, `proj = nn.Linear(C, C, bias=False)` and
/// `F.scaled_dot_product_attention(q, k, v, is_causal=True)`; their weights are the transposes of `W_qkv`, `W_proj`.
///
/// Shapes: `X` and `Y` are `N × (T·C)`, `N` sequences of `T` steps (any `T ≥ 1`).
public struct MultiHeadAttention: Layer {
    /// `C`, the features of each step.
    public let width: Int
    /// `H`, which must divide `C`.
    public let heads: Int
    /// `W_qkv`, `C × 3C`.
    public private(set) var qkvWeight: Matrix
    /// `W_proj`, `C × C`.
    public private(set) var projectionWeight: Matrix
    /// `∂L/∂W_qkv`, `∂L/∂W_proj`.
    public private(set) var qkvWeightGradient: Matrix, projectionWeightGradient: Matrix

    /// `D = C/H`.
    public var headSize: Int { width / heads }

    /// Attention of `heads` heads over `width` features, its weights drawn from `N(0, 0.02²)` with `seed`.
    public init(width: Int, heads: Int, seed: UInt64? = nil) {
        precondition(width > 0 && heads > 0 && width % heads == 0,
                     "MultiHeadAttention: \(heads) heads do not divide a width of \(width)")
        (self.width, self.heads) = (width, heads)
        let tensors = makeParameterTensors([(width, 3 * width), (width, width)])
        (qkvWeight, projectionWeight) = (tensors.values[0], tensors.values[1])
        (qkvWeightGradient, projectionWeightGradient) = (tensors.gradients[0], tensors.gradients[1])
        var generator = SeededGenerator(seed: seed ?? LayerSeeds.next())
        initialize(.normal(standardDeviation: 0.02), using: &generator)
    }

    public func outputSize(forInputSize inputSize: Int) -> Int {
        precondition(inputSize > 0 && inputSize % width == 0, "MultiHeadAttention: \(inputSize) input features are not steps of \(width)")
        return inputSize
    }
    public func outputSizeIfAccepted(forInputSize inputSize: Int) -> Int? {
        inputSize > 0 && inputSize % width == 0 ? inputSize : nil
    }
    public var parameters: [Matrix] { [qkvWeight, projectionWeight] }
    public var parameterGradients: [Matrix] { [qkvWeightGradient, projectionWeightGradient] }
    /// `qkv.weight` (`3C × C`) and `proj.weight` (`C × C`), as `nn.Linear` stores them (transposed).
    public var parameterNames: [TensorName] {
        [TensorName("qkv.weight", shape: [3 * width, width], transposed: true),
         TensorName("proj.weight", shape: [width, width], transposed: true)]
    }

    public mutating func bind(parameters: [Matrix], gradients: [Matrix]) {
        rebind("MultiHeadAttention", current: self.parameters, parameters: parameters, gradients: gradients)
        (qkvWeight, projectionWeight) = (parameters[0], parameters[1])
        (qkvWeightGradient, projectionWeightGradient) = (gradients[0], gradients[1])
    }

    /// Draws both weights with `initializer` (fan-in `C`).
    public func initialize(_ initializer: Initializer, using generator: inout SeededGenerator) {
        initializer.fill(qkvWeight, fanIn: width, fanOut: 3 * width, using: &generator)
        initializer.fill(projectionWeight, fanIn: width, fanOut: width, using: &generator)
    }

    /// `[Q|K|V]` (`M × 3C`, `M = N·T`), `P` (`N·H·T·T`), `A` (`M × C`) and a transposed copy of one head's keys or
    /// values per pair (`M × C`); for the backward pass also `dA` (`M × C`), `d[Q|K|V]` (`M × 3C`) and a row of `T`
    /// per pair.
    public func scratchCount(rows: Int, inputSize: Int, backward: Bool) -> Int {
        let steps = inputSize / width, m = rows * steps
        return 5 * m * width + rows * heads * steps * steps + (backward ? 4 * m * width + rows * heads * steps : 0)
    }

    private struct Scratch {
        let qkv: Matrix, probabilities: Matrix, attention: Matrix, transposed: Matrix, dAttention: Matrix, dQKV: Matrix
        let rowTemporary: Matrix
    }

    private func views(_ context: LayerContext, rows: Int, steps: Int) -> Scratch {
        let m = rows * steps, c = width, pCount = rows * heads * steps * steps
        let backward = context.scratchIncludesBackward
        return Scratch(qkv: context.scratch(rows: m, columns: 3 * c, offset: 0),
                       probabilities: context.scratch(rows: 1, columns: pCount, offset: 3 * m * c),
                       attention: context.scratch(rows: m, columns: c, offset: 3 * m * c + pCount),
                       transposed: context.scratch(rows: m, columns: c, offset: 4 * m * c + pCount),
                       dAttention: context.scratch(rows: backward ? m : 0, columns: c, offset: backward ? 5 * m * c + pCount : 0),
                       dQKV: context.scratch(rows: backward ? m : 0, columns: 3 * c, offset: backward ? 6 * m * c + pCount : 0),
                       rowTemporary: context.scratch(rows: 1, columns: backward ? rows * heads * steps : 0, offset: backward ? 9 * m * c + pCount : 0))
    }

    /// `Y = A·W_proj` with `A` the heads' attention over `X·W_qkv`.
    public func forward(output: Matrix, input: Matrix, context: LayerContext) {
        forward(output: output, input: input, context: context, addToOutput: false)
    }

    /// The forward pass, adding `A·W_proj` to `output` when `addToOutput` (a residual connection's sum).
    func forward(output: Matrix, input: Matrix, context: LayerContext, addToOutput: Bool) {
        precondition(sameShape: output, input, "MultiHeadAttention.forward")
        precondition(input.columns % width == 0, "MultiHeadAttention.forward: input \(input.shapeDescription) is not steps of \(width)")
        let steps = input.columns / width, m = input.rows * steps
        let s = views(context, rows: input.rows, steps: steps)
        let x = input.reshaped(rows: m, columns: width)
        gemm(s.qkv, x, qkvWeight)
        attend(output: s.attention, probabilities: s.probabilities, keysT: s.transposed, qkv: s.qkv,
               sequences: input.rows, steps: steps, firstQuery: 0)
        gemm(output.reshaped(rows: m, columns: width), s.attention, projectionWeight, beta: addToOutput ? 1 : 0)
    }

    /// `bp_attention` over the `sequences · H` pairs of `qkv` (`sequences · steps` rows), split between the threads.
    func attend(output: Matrix, probabilities: Matrix, keysT: Matrix, qkv: Matrix, sequences: Int, steps: Int, firstQuery: Int) {
        struct Job { var y, p, kt: UnsafeMutablePointer<Float>, qkv: UnsafePointer<Float>, steps, first, width, heads, pairs: Int }
        var job = Job(y: output.pointer, p: probabilities.pointer, kt: keysT.pointer, qkv: qkv.pointer, steps: steps,
                      first: firstQuery, width: width, heads: heads, pairs: sequences * heads)
        let work = (steps - firstQuery) * steps * width * job.pairs
        Parallel.run(parts: work < 200_000 ? 1 : min(job.pairs, 4 * Parallel.threadCount), context: &job) { context, part, parts in
            let j = context.load(as: Job.self)
            let range = Parallel.chunk(part, of: parts, count: j.pairs, alignment: 1)
            bp_attention(j.y, j.p, j.kt, j.qkv, j.steps, j.first, j.width, j.heads, range.lowerBound, range.upperBound)
        }
    }

    public func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix, context: LayerContext) {
        precondition(sameShape: dOutput, input, "MultiHeadAttention.backward")
        if let dInput { precondition(sameShape: dInput, input, "MultiHeadAttention.backward") }
        precondition(context.scratchIncludesBackward, "MultiHeadAttention.backward: the scratch was planned without room for the backward pass")
        let steps = input.columns / width, m = input.rows * steps
        let s = views(context, rows: input.rows, steps: steps)
        let dY = dOutput.reshaped(rows: m, columns: width), x = input.reshaped(rows: m, columns: width)
        gemm(projectionWeightGradient, s.attention, dY, transposeA: true, beta: 1)
        gemm(s.dAttention, dY, projectionWeight, transposeB: true)
        struct Job { var dqkv, vt, rows: UnsafeMutablePointer<Float>, dy, qkv: UnsafePointer<Float>, p: UnsafeMutablePointer<Float>, steps, width, heads, pairs: Int }
        var job = Job(dqkv: s.dQKV.pointer, vt: s.transposed.pointer, rows: s.rowTemporary.pointer, dy: s.dAttention.pointer,
                      qkv: s.qkv.pointer, p: s.probabilities.pointer, steps: steps, width: width, heads: heads, pairs: input.rows * heads)
        let work = steps * steps * width * job.pairs
        Parallel.run(parts: work < 100_000 ? 1 : min(job.pairs, 4 * Parallel.threadCount), context: &job) { context, part, parts in
            let j = context.load(as: Job.self)
            let range = Parallel.chunk(part, of: parts, count: j.pairs, alignment: 1)
            bp_attention_backward(j.dqkv, j.vt, j.rows, j.dy, j.qkv, j.p, j.steps, j.width, j.heads, range.lowerBound, range.upperBound)
        }
        gemm(qkvWeightGradient, x, s.dQKV, transposeA: true, beta: 1)
        if let dInput { gemm(dInput.reshaped(rows: m, columns: width), s.dQKV, qkvWeight, transposeB: true) }
    }
}
