/// Inverted dropout (Srivastava et al., 2014): while training, each element is zeroed with probability `p` and the
/// survivors are scaled by `1/(1 − p)`, so that evaluation (the identity) needs no rescaling.
/// PyTorch: `nn.Dropout(p=0.5)`.
///
/// Training: `y = x ∘ m / (1 − p)`, `mᵢ ~ Bernoulli(1 − p)`; backward `dx = dy ∘ m / (1 − p)`.
/// Evaluation: `y = x`, `dx = dy`.
///
/// The mask is not stored: it is a hash of (`seed`, the context's ``LayerContext/randomIndex``, element index in the
/// whole batch, counting rows from ``LayerContext/rowOffset``), so it is reproducible, costs no memory, the backward
/// pass (given its forward pass's context) uses the same mask, and a batch run in pieces draws what it would in one
/// call. A ``Trainer`` gives each step a new random index; a finite-difference check keeps one.
public struct Dropout: Layer {
    /// `p`, the probability of zeroing an element.
    public let probability: Float
    /// Seeds the masks.
    public let seed: UInt64

    /// Dropout with probability `p`; without a seed, the layer takes the next seed of a process-wide sequence, so
    /// that two dropout layers never draw the same masks.
    public init(probability: Float = 0.5, seed: UInt64? = nil) {
        precondition(probability >= 0 && probability < 1, "Dropout: probability must be in [0, 1), got \(probability)")
        self.probability = probability
        self.seed = seed ?? LayerSeeds.next()
    }

    public func outputSize(forInputSize inputSize: Int) -> Int { inputSize }

    public func forward(output: Matrix, input: Matrix, context: LayerContext) {
        precondition(sameShape: output, input, "Dropout.forward")
        guard context.isTraining && probability > 0 else { output.assign(input); return }
        let x = input.pointer, y = output.pointer, scale = 1 / (1 - probability)
        let threshold = UInt32(Double(probability) * 4_294_967_296.0), index = context.randomIndex
        let first = context.rowOffset * input.columns
        for i in 0..<input.count { y[i] = keeps(first + i, index, threshold) ? x[i] * scale : 0 }
    }

    public func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix, context: LayerContext) {
        guard let dInput else { return }
        precondition(sameShape: dInput, dOutput, "Dropout.backward")
        guard context.isTraining && probability > 0 else { dInput.assign(dOutput); return }
        let dy = dOutput.pointer, dx = dInput.pointer, scale = 1 / (1 - probability)
        let threshold = UInt32(Double(probability) * 4_294_967_296.0), index = context.randomIndex
        let first = context.rowOffset * dInput.columns
        for i in 0..<dInput.count { dx[i] = keeps(first + i, index, threshold) ? dy[i] * scale : 0 }
    }

    @inline(__always)
    private func keeps(_ i: Int, _ index: UInt64, _ threshold: UInt32) -> Bool {
        dropoutKeeps(seed: seed, index: index, element: i, threshold: threshold)
    }
}

/// Whether element `element` survives dropout mask `index`: a SplitMix64 hash of (seed, index, element) compared with
/// `p·2³²` (`threshold`).
@inline(__always)
func dropoutKeeps(seed: UInt64, index: UInt64, element: Int, threshold: UInt32) -> Bool {
    var z = seed &+ index &* 0xD1B5_4A32_D192_ED03 &+ UInt64(element) &* 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    z ^= z >> 31
    return UInt32(truncatingIfNeeded: z >> 32) >= threshold
}
