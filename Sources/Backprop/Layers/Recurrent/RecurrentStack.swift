import CSIMD

/// Everything ``RNN``, ``LSTM`` and ``GRU`` share: `L` stacked layers of one or two directions of a cell, their
/// parameters in PyTorch's order and names, and backpropagation through time over batch-first sequences.
///
/// Shapes: `N` sequences of `T` steps of `F` features are `N × (T·F)` (row `n` holds step 0's features, then step
/// 1's, …). Layer 0 reads them; layer `k > 0` reads layer `k − 1`'s hidden states, the directions side by side
/// (`D·H` features per step), with dropout between layers in training. The output is the top layer's hidden
/// states, `N × (T·D·H)` (every step: at step `t`, the forward direction's `hₜ` then the reverse direction's),
/// or only step `T − 1`'s, `N × D·H` — PyTorch's `output[:, -1]`. The reverse direction runs from step `T − 1`
/// down to 0.
///
/// How it runs, as the fast CPU implementations do: the input is laid out time-major once (step `t` of sequence
/// `s` at row `t·N + s`); the input projection of all steps is one GEMM per layer and direction; each step one
/// recurrent GEMM and one vectorised C kernel for its gates; backward, each step one kernel and one GEMM
/// (`dhₜ₋₁ = dGₜ·W_hh`), and each weight gradient one GEMM over all steps (`dW_ih += dGᵀ·X`, `dW_hh += dGᵀ·H₋₁`;
/// a GRU's `dW_ih` two, one per column block of its `[dr, dz, dn⊙r, dn]`). The steps' products share one operand,
/// `W_hhᵀ` forward and `W_hh` backward, packed once per pass (``PackedOperand``) instead of by `sgemm` at every step.
/// With several threads each step's sequences are split between them, each running the step's GEMM and kernel on
/// its own rows (`RecurrentSteps.swift`).
/// The scratch space keeps every step's gates and states, so the backward pass recomputes nothing, and holds the
/// state before the first step beside them, so a non-zero initial state needs no special case.
public struct RecurrentStack: Sendable {
    /// The cell.
    public let cell: RecurrentCell
    /// `F`, the features of one input step; `H`, the hidden state's size.
    public let inputSize: Int, hiddenSize: Int
    /// `L`, the stacked layers.
    public let numLayers: Int
    /// Whether each layer also runs over the sequence backwards (`D` = 2).
    public let bidirectional: Bool
    /// The probability of dropping each output of a layer below the top one, in training (0: none).
    public let dropout: Float
    /// Seeds the dropout masks (as ``Dropout``'s `seed`).
    public let dropoutSeed: UInt64
    /// Whether the output is every step's hidden state (`N × T·D·H`) or only the last step's (`N × D·H`).
    public let returnsSequences: Bool
    /// The parameters of every layer and direction, in PyTorch's order: layer 0, layer 0 reverse, layer 1, …
    public private(set) var layers: [RecurrentParameters]

    /// `D`, 1 or 2.
    public var directions: Int { bidirectional ? 2 : 1 }

    init(cell: RecurrentCell, inputSize: Int, hiddenSize: Int, numLayers: Int, bidirectional: Bool, dropout: Float,
         returnsSequences: Bool, seed: UInt64?) {
        let name = cell.typeName
        precondition(inputSize > 0 && hiddenSize > 0, "\(name): sizes must be positive, got \(inputSize) → \(hiddenSize)")
        precondition(numLayers >= 1, "\(name): numLayers must be at least 1, got \(numLayers)")
        precondition(dropout >= 0 && dropout < 1, "\(name): dropout must be in [0, 1), got \(dropout)")
        (self.cell, self.inputSize, self.hiddenSize, self.numLayers) = (cell, inputSize, hiddenSize, numLayers)
        (self.bidirectional, self.dropout, self.returnsSequences) = (bidirectional, dropout, returnsSequences)
        let seed = seed ?? LayerSeeds.next(), d = bidirectional ? 2 : 1
        dropoutSeed = seed &+ 0x5851_F42D_4C95_7F2D
        layers = (0..<numLayers).flatMap { k in
            (0..<d).map { direction in
                RecurrentParameters(inputSize: k == 0 ? inputSize : d * hiddenSize, hiddenSize: hiddenSize,
                                    gates: cell.gates, layer: k, reverse: direction == 1)
            }
        }
        var generator = SeededGenerator(seed: seed)
        initialize(.pytorchDefault, using: &generator)
    }

    /// The number of parameters of a stack of this shape.
    public static func parameterCount(cell: RecurrentCell, inputSize: Int, hiddenSize: Int, numLayers: Int, directions: Int) -> Int {
        (0..<numLayers).reduce(0) { total, k in
            total + directions * RecurrentParameters.count(inputSize: k == 0 ? inputSize : directions * hiddenSize,
                                                            hiddenSize: hiddenSize, gates: cell.gates)
        }
    }

    /// An upper bound, in floats, of the scratch space of a stack of this shape for `rows` sequences of `steps`
    /// steps with room for the backward pass (in `Double`, so that absurd sizes compare rather than overflow): for
    /// sizing memory before anything is allocated.
    public static func scratchEstimate(cell: RecurrentCell, inputSize: Int, hiddenSize: Int, numLayers: Int, directions: Int,
                                       rows: Int, steps: Int) -> Double {
        let h = Double(hiddenSize), g = Double(cell.gates) * h, d = Double(directions), f = Double(inputSize)
        let perStep = Double(numLayers) * d * (g + 4 * h) + 2 * g + 2 * d * h * 2 + 2 * f + d * h * Double(numLayers)
        // Beside the per-step buffers: W_ihᵀ, the packed W_hh (either way round, its panels padded to 32 columns), the
        // bias sum and the step parts' bias-gradient partials.
        let packed = h * (g + 32) + g * (h + 32), partials = 2 * Double(RecurrentSteps.maximumParts) * 4 * h + 1
        return Double(rows) * (Double(steps) + 1) * perStep + f * g + packed + 2 * g + partials
    }

    var parameters: [Matrix] { layers.flatMap(\.parameters) }
    var gradients: [Matrix] { layers.flatMap(\.gradients) }
    var names: [TensorName] { layers.flatMap(\.names) }

    mutating func bind(parameters: [Matrix], gradients: [Matrix]) {
        precondition(parameters.count == 4 * layers.count && gradients.count == 4 * layers.count,
                     "\(cell.typeName).bind: needs [W_ih, W_hh, b_ih, b_hh] for each of \(layers.count) layers and directions, twice; got \(parameters.count) and \(gradients.count)")
        for index in layers.indices {
            let range = (4 * index)..<(4 * index + 4)
            layers[index].bind(parameters: Array(parameters[range]), gradients: Array(gradients[range]))
        }
    }

    func initialize(_ initializer: Initializer, using generator: inout SeededGenerator) {
        for layer in layers { layer.initialize(initializer, using: &generator) }
    }

    /// The number of steps in an input of `width` features, if whole.
    func steps(_ width: Int) -> Int? { width > 0 && width % inputSize == 0 ? width / inputSize : nil }

    func outputSizeIfAccepted(forInputSize inputSize: Int) -> Int? {
        steps(inputSize).map { (returnsSequences ? $0 : 1) * directions * hiddenSize }
    }

    // MARK: The scratch space

    /// Where each buffer lies in the scratch space for `n` sequences of `t` steps. Per layer and direction (a
    /// "record"): `hidden` (`(T+1)·N × H`: block `b` is rows `b·N..<(b+1)·N`; the forward direction keeps its
    /// initial state in block 0 and step `t` in block `t + 1`, the reverse direction step `t` in block `t` and its
    /// initial state in block `T`, so step `t`'s previous state is always the neighbouring block), and for an LSTM
    /// `gates` (`T·N × 4H`), `cells` (like `hidden`), `cellTanh` (`T·N × H`); for a GRU `gates` (`T·N × 3H`) and
    /// `hiddenN` (`T·N × H`).
    struct Buffers {
        let n: Int, t: Int, h: Int, g: Int, cell: RecurrentCell
        let context: LayerContext
        let recordSize: Int
        let input: Matrix  // T·N × F, time-major
        let layerInputs: Int  // offset of (L − 1) buffers T·N × D·H (when `ownInputs`)
        let ownInputs: Bool
        let recurrent: Matrix  // N × 3H (GRU)
        /// `T·N × G·H` (backward): `dG` of every step; for a GRU `T·N × 4H`, `[dr, dz, dn⊙r, dn]` (``bp_gru_step_backward``).
        let gateGradients: Matrix
        let hiddenGradient: Matrix, cellGradient: Matrix  // N × H (backward)
        let sequenceGradients: (Matrix, Matrix)  // T·N × D·H (backward, L > 1)
        let inputGradient: Matrix  // T·N × F (backward)
        let oneHot: Matrix  // 1 × (1 + T·N): a flag (1 when every step of the input is one-hot), then the indices, time-major
        let transposedWeight: Matrix  // F × G·H: layer 0's W_ihᵀ (forward) or dW_ihᵀ (backward), for one-hot inputs
        /// The current layer and direction's `W_hhᵀ` (forward, `H × G·H`) or `W_hh` (backward, `G·H × H`), packed.
        let packedRecurrentWeight: Matrix
        let biasSum: Matrix  // 1 × G·H: b_ih + b_hh (forward)
        /// Room for `RecurrentSteps.maximumParts × 4H` doubles at an 8-byte-aligned address of the scratch: each step
        /// part's bias-gradient sums (backward, which binds it to `Double` while it sums; `nil` when only sizing).
        let biasPartials: UnsafeMutableRawPointer?
        let count: Int

        init(_ stack: RecurrentStack, _ context: LayerContext?, n: Int, t: Int, backward: Bool) {
            let h = stack.hiddenSize, g = stack.cell.gates * h, nt = n * t, dh = stack.directions * h
            (self.n, self.t, self.h, self.g, self.cell) = (n, t, h, g, stack.cell)
            self.context = context ?? LayerContext()
            switch stack.cell {
            case .lstm: recordSize = (nt + n) * h * 2 + nt * g + nt * h
            case .gru: recordSize = (nt + n) * h + nt * g + nt * h
            case .rnnTanh, .rnnReLU: recordSize = (nt + n) * h
            }
            var offset = recordSize * stack.layers.count
            let scratch = context
            func take(_ rows: Int, _ columns: Int) -> Matrix {
                defer { offset += rows * columns }
                guard let scratch else { return LayerContext.noScratch }
                return scratch.scratch(rows: rows, columns: columns, offset: offset)
            }
            input = take(nt, stack.inputSize)
            ownInputs = stack.numLayers > 1 && (stack.bidirectional || stack.dropout > 0)
            layerInputs = offset
            offset += ownInputs ? (stack.numLayers - 1) * nt * dh : 0
            recurrent = take(stack.cell == .gru ? n : 0, g)
            gateGradients = take(backward ? nt : 0, stack.cell == .gru ? 4 * h : g)
            (hiddenGradient, cellGradient) = (take(backward ? n : 0, h), take(backward ? n : 0, h))
            let sequences = backward && stack.numLayers > 1 ? nt : 0
            sequenceGradients = (take(sequences, dh), take(sequences, dh))
            inputGradient = take(backward ? nt : 0, stack.inputSize)
            oneHot = take(1, 1 + nt)
            transposedWeight = take(stack.inputSize, g)
            packedRecurrentWeight = take(1, max(PackedOperand.storageCount(k: h, n: g), PackedOperand.storageCount(k: g, n: h)))
            biasSum = take(1, g)
            let partials = take(1, backward ? 2 * Self.biasPartialCount(h: h) + 1 : 0)  // one float spare, to align
            biasPartials = backward && scratch != nil ? Self.aligned(partials) : nil
            count = offset
        }

        /// The number of doubles in ``biasPartials``.
        static func biasPartialCount(h: Int) -> Int { RecurrentSteps.maximumParts * RecurrentSteps.biasPartialWidth(h: h) }

        /// The first 8-byte-aligned address of `floats` (which has a float to spare for this).
        static func aligned(_ floats: Matrix) -> UnsafeMutableRawPointer {
            let raw = UnsafeMutableRawPointer(floats.pointer)
            return raw + (Int(bitPattern: raw) % 8 == 0 ? 0 : 4)
        }

        /// The buffers of layer `k`, direction `d`.
        func record(_ index: Int) -> Record {
            var offset = index * recordSize
            func take(_ rows: Int, _ columns: Int) -> Matrix {
                defer { offset += rows * columns }
                return context.scratch(rows: rows, columns: columns, offset: offset)
            }
            let nt = n * t
            switch cell {
            case .lstm:
                return Record(n: n, hidden: take(nt + n, h), gates: take(nt, g), cells: take(nt + n, h), cellTanh: take(nt, h),
                              hiddenN: LayerContext.noScratch)
            case .gru:
                return Record(n: n, hidden: take(nt + n, h), gates: take(nt, g), cells: LayerContext.noScratch,
                              cellTanh: LayerContext.noScratch, hiddenN: take(nt, h))
            case .rnnTanh, .rnnReLU:
                return Record(n: n, hidden: take(nt + n, h), gates: LayerContext.noScratch, cells: LayerContext.noScratch,
                              cellTanh: LayerContext.noScratch, hiddenN: LayerContext.noScratch)
            }
        }

        /// Layer `k`'s own input buffer (`T·N × D·H`), for `k ≥ 1` when `ownInputs`.
        func layerInput(_ k: Int, width: Int) -> Matrix {
            context.scratch(rows: n * t, columns: width, offset: layerInputs + (k - 1) * n * t * width)
        }
    }

    /// One layer and direction's buffers (see ``Buffers``).
    struct Record {
        let n: Int
        let hidden: Matrix, gates: Matrix, cells: Matrix, cellTanh: Matrix, hiddenN: Matrix

        /// Block `b` (`N × H`) of a `(T+1)·N × H` buffer.
        func block(_ matrix: Matrix, _ b: Int) -> Matrix { matrix.rows((b * n)..<((b + 1) * n)) }
        /// Rows of step `t` (`N × columns`) of a `T·N` buffer.
        func step(_ matrix: Matrix, _ t: Int) -> Matrix { matrix.rows((t * n)..<((t + 1) * n)) }
    }

    /// The block of step `step`'s state and of the state before it, for direction `d`, in a record's `hidden` and
    /// `cells`.
    @inline(__always) static func blocks(step: Int, direction d: Int) -> (current: Int, previous: Int) {
        d == 0 ? (step + 1, step) : (step, step + 1)
    }

    func scratchCount(rows: Int, inputSize: Int, backward: Bool) -> Int {
        guard let t = steps(inputSize) else { return 0 }
        return Buffers(self, nil, n: rows, t: t, backward: backward).count
    }

    /// Layer `k`'s input: the time-major input for `k = 0`; above, its own buffer, or layer `k − 1`'s hidden states
    /// themselves when one direction and no dropout leave nothing to combine.
    func layerInput(_ k: Int, _ b: Buffers) -> Matrix {
        if k == 0 { return b.input }
        if b.ownInputs { return b.layerInput(k, width: directions * hiddenSize) }
        return b.record(k - 1).hidden.rows(b.n..<((b.t + 1) * b.n))
    }

    // MARK: The passes

    /// Checks the shapes a pass is given and returns the sequences `N` and steps `T`; stops with the shapes in the
    /// message otherwise.
    func checkedShape(input: Matrix, output: Matrix?, dInput: Matrix?, states: (RecurrentState?, RecurrentState?),
                      context: LayerContext, backward: Bool) -> (n: Int, t: Int) {
        let pass = "\(cell.typeName).\(backward ? "backward" : "forward")"
        guard let t = steps(input.columns) else {
            preconditionFailure("\(pass): input \(input.shapeDescription) is not a whole number of steps of \(inputSize) features")
        }
        let n = input.rows, width = directions * hiddenSize
        if let output {
            precondition(output.rows == n && output.columns == (returnsSequences ? t * width : width),
                         "\(pass): \(backward ? "dOutput" : "output") \(output.shapeDescription) does not fit \(n) sequences of \(returnsSequences ? "\(t) steps of " : "")\(width)")
        }
        let needed = Buffers(self, nil, n: n, t: t, backward: backward).count
        precondition((!backward || context.scratchIncludesBackward) && context.scratch.count >= needed,
                     "\(pass): needs \(backward ? "the scratch its forward pass filled, planned with backward: true, " : "")\(needed) floats of scratch, was given \(context.scratch.count)")
        if let dInput { precondition(sameShape: dInput, input, "\(pass) (dInput, input)") }
        let rows = numLayers * directions * n
        func check(_ state: RecurrentState, _ name: String) {
            precondition(state.hidden.rows == rows && state.hidden.columns == hiddenSize,
                         "\(pass): \(name).hidden \(state.hidden.shapeDescription) is not \(rows)×\(hiddenSize) (layers·directions·sequences × hidden)")
            if cell == .lstm {
                precondition(state.cell.map { $0.rows == rows && $0.columns == hiddenSize } ?? false,
                             "\(pass): an LSTM's \(name).cell must be \(rows)×\(hiddenSize), got \(state.cell?.shapeDescription ?? "none")")
            }
        }
        if let initial = states.0 { check(initial, backward ? "dInitialState" : "initialState") }
        if let final = states.1 { check(final, backward ? "dFinalState" : "finalState") }
        return (n, t)
    }

    func forward(output: Matrix, finalState: RecurrentState?, input: Matrix, initialState: RecurrentState?,
                 context: LayerContext) {
        let (n, t) = checkedShape(input: input, output: output, dInput: nil,
                                  states: (initialState, finalState),
                                  context: context, backward: false)
        let b = Buffers(self, context, n: n, t: t, backward: context.scratchIncludesBackward)
        let h = hiddenSize, f = inputSize
        let oneHot = Self.findOneHot(input, n: n, t: t, f: f, into: b.oneHot)
        if !oneHot {
            for s in 0..<n {  // time-major: step t of sequence s at row t·N + s
                for step in 0..<t { (b.input.pointer + (step * n + s) * f).update(from: input.pointer + (s * t + step) * f, count: f) }
            }
        }
        for k in 0..<numLayers {
            let x: Matrix? = k == 0 && oneHot ? nil : layerInput(k, b)
            for d in 0..<directions {
                let index = k * directions + d, r = b.record(index), p = layers[index]
                let initialBlock = d == 0 ? 0 : t, finalBlock = d == 0 ? t : 0
                if let initialState {
                    r.block(r.hidden, initialBlock).assign(initialState.hidden.rows((index * n)..<((index + 1) * n)))
                    if let cell = initialState.cell, self.cell == .lstm {
                        r.block(r.cells, initialBlock).assign(cell.rows((index * n)..<((index + 1) * n)))
                    }
                } else {
                    r.block(r.hidden, initialBlock).fill(0)
                    if cell == .lstm { r.block(r.cells, initialBlock).fill(0) }
                }
                forwardSteps(r, p, x: x, oneHot: b, recurrent: b.recurrent, n: n, t: t, direction: d)
                if let finalState {
                    finalState.hidden.rows((index * n)..<((index + 1) * n)).assign(r.block(r.hidden, finalBlock))
                    if let cell = finalState.cell, self.cell == .lstm {
                        cell.rows((index * n)..<((index + 1) * n)).assign(r.block(r.cells, finalBlock))
                    }
                }
            }
            if k + 1 < numLayers && b.ownInputs {
                let next = b.layerInput(k + 1, width: directions * h)
                for d in 0..<directions {
                    let r = b.record(k * directions + d)
                    for step in 0..<t {
                        let source = r.block(r.hidden, Self.blocks(step: step, direction: d).current).pointer
                        for s in 0..<n { (next.pointer + (step * n + s) * directions * h + d * h).update(from: source + s * h, count: h) }
                    }
                }
                if context.isTraining && dropout > 0 { applyDropout(next, layer: k, n: n, t: t, context: context) }
            }
        }
        writeOutput(output, b, n: n, t: t)
    }

    /// The projection `X·W_ihᵀ` into `target` (`T·N × G·H`; the cells' kernels add the biases): one GEMM, or, when
    /// `x` is `nil` (a one-hot input, its indices in `b.oneHot`), row `c` of `W_ihᵀ` for each step's index `c` — a
    /// copy, not a product.
    private func project(_ target: Matrix, x: Matrix?, _ p: RecurrentParameters, _ b: Buffers) {
        if let x {
            gemm(target, x, p.weightIH, transposeB: true)
            return
        }
        let g = target.columns, f = inputSize, w = p.weightIH.pointer, wt = b.transposedWeight.pointer
        for j in 0..<g { for c in 0..<f { wt[c * g + j] = w[j * f + c] } }
        let indices = b.oneHot.pointer + 1
        for row in 0..<target.rows {
            (target.pointer + row * g).update(from: wt + Int(indices[row]) * g, count: g)
        }
    }

    /// Whether every step of `input` (`N × T·F`) is one-hot — one element 1, the others 0 — and if so its indices,
    /// time-major, after a flag, in `oneHot`. Stops reading at the first element that is neither, so a dense input
    /// costs almost nothing.
    static func findOneHot(_ input: Matrix, n: Int, t: Int, f: Int, into oneHot: Matrix) -> Bool {
        let x = input.pointer, indices = oneHot.pointer + 1
        oneHot.pointer[0] = 0
        for s in 0..<n {
            for step in 0..<t {
                let row = x + (s * t + step) * f
                var index = -1
                for c in 0..<f {
                    let value = row[c]
                    if value == 1 && index < 0 { index = c } else if value != 0 { return false }
                }
                guard index >= 0 else { return false }
                indices[step * n + s] = Float(index)
            }
        }
        oneHot.pointer[0] = 1
        return true
    }

    /// One layer and direction's steps: the input projection of every step (one GEMM), then per step the recurrent
    /// GEMM and the cell's kernel, which adds the biases.
    private func forwardSteps(_ r: Record, _ p: RecurrentParameters, x: Matrix?, oneHot b: Buffers, recurrent: Matrix, n: Int, t: Int,
                              direction d: Int) {
        let h = hiddenSize, bias = b.biasSum.pointer, g = b.biasSum.columns
        for j in 0..<g { bias[j] = p.biasIH.pointer[j] + p.biasHH.pointer[j] }
        // W_hhᵀ, packed once for the recurrent product `h₋₁·W_hhᵀ` of every step.
        let transposed = PackedOperand(p.weightHH.pointer, ldb: h, k: h, n: g, transposed: true, storage: b.packedRecurrentWeight.pointer)
        switch cell {
        case .lstm:
            project(r.gates, x: x, p, b)
            for i in 0..<t {
                let step = d == 0 ? i : t - 1 - i, (current, previous) = Self.blocks(step: step, direction: d)
                RecurrentSteps.lstmForward(.init(gates: r.step(r.gates, step).pointer, previousHidden: r.block(r.hidden, previous).pointer,
                                                 weightHHTransposed: transposed, bias: bias, previousCell: r.block(r.cells, previous).pointer,
                                                 cell: r.block(r.cells, current).pointer, cellTanh: r.step(r.cellTanh, step).pointer,
                                                 hidden: r.block(r.hidden, current).pointer, h: h), n: n)
            }
        case .gru:
            project(r.gates, x: x, p, b)
            for row in 0..<n { (recurrent.pointer + row * g).update(from: p.biasHH.pointer, count: g) }  // b_hh, kept by the kernel
            for i in 0..<t {
                let step = d == 0 ? i : t - 1 - i, (current, previous) = Self.blocks(step: step, direction: d)
                RecurrentSteps.gruForward(.init(gates: r.step(r.gates, step).pointer, recurrent: recurrent.pointer,
                                                previousHidden: r.block(r.hidden, previous).pointer, weightHHTransposed: transposed,
                                                biasIH: p.biasIH.pointer, biasHH: p.biasHH.pointer,
                                                hiddenN: r.step(r.hiddenN, step).pointer, hidden: r.block(r.hidden, current).pointer,
                                                h: h), n: n)
            }
        case .rnnTanh, .rnnReLU:
            let steps = r.hidden.rows(d == 0 ? n..<((t + 1) * n) : 0..<(t * n))
            project(steps, x: x, p, b)
            for i in 0..<t {
                let step = d == 0 ? i : t - 1 - i, (current, previous) = Self.blocks(step: step, direction: d)
                RecurrentSteps.rnnForward(.init(hidden: r.block(r.hidden, current).pointer, previousHidden: r.block(r.hidden, previous).pointer,
                                                weightHHTransposed: transposed, bias: bias, h: h, relu: cell == .rnnReLU), n: n)
            }
        }
    }

    /// The top layer's hidden states into `output`, batch-first: every step's (`N × T·D·H`) or step `T − 1`'s.
    private func writeOutput(_ output: Matrix, _ b: Buffers, n: Int, t: Int) {
        let h = hiddenSize, width = directions * h, top = (numLayers - 1) * directions
        for d in 0..<directions {
            let r = b.record(top + d)
            for step in (returnsSequences ? 0 : t - 1)..<t {
                let source = r.block(r.hidden, Self.blocks(step: step, direction: d).current).pointer
                let column = (returnsSequences ? step * width : 0) + d * h
                for s in 0..<n {
                    (output.pointer + s * output.columns + column).update(from: source + s * h, count: h)
                }
            }
        }
    }

    /// Inverted dropout on layer `k`'s output (time-major `T·N × D·H`), in place; the mask of element `(s, t, j)` is
    /// a hash of (seed, layer, the context's random index, its position in the whole batch), as ``Dropout`` draws.
    private func applyDropout(_ values: Matrix, layer k: Int, n: Int, t: Int, context: LayerContext) {
        let width = values.columns, scale = 1 / (1 - dropout), p = values.pointer
        let threshold = UInt32(Double(dropout) * 4_294_967_296.0), seed = dropoutSeed &+ UInt64(k)
        for step in 0..<t {
            for s in 0..<n {
                let row = p + (step * n + s) * width, first = ((context.rowOffset + s) * t + step) * width
                for j in 0..<width {
                    row[j] = dropoutKeeps(seed: seed, index: context.randomIndex, element: first + j, threshold: threshold)
                        ? row[j] * scale : 0
                }
            }
        }
    }

    /// Where the gradient of a layer's output comes from: the whole layer's `dOutput` (batch-first, every step or
    /// the last), the layer above (time-major `T·N × D·H`), or nowhere (a loss on the final state only).
    private enum SequenceGradient {
        case none, batchFirst(Matrix), timeMajor(Matrix)
    }

    /// Adds `∂L/∂hₜ` of direction `d` at `step` from `source` to `dh` (`N × H`).
    private func addSequenceGradient(_ dh: Matrix, _ source: SequenceGradient, step: Int, direction d: Int, n: Int, t: Int) {
        let h = hiddenSize, width = directions * h, target = dh.pointer
        let base: UnsafeMutablePointer<Float>, stride: Int  // sequence s's gradient at base + s·stride
        switch source {
        case .none: return
        case .batchFirst(let m):
            if returnsSequences {
                (base, stride) = (m.pointer + step * width + d * h, t * width)
            } else {
                guard step == t - 1 else { return }
                (base, stride) = (m.pointer + d * h, width)
            }
        case .timeMajor(let m):
            (base, stride) = (m.pointer + step * n * width + d * h, width)
        }
        for s in 0..<n {
            let row = base + s * stride, out = target + s * h
            for j in 0..<h { out[j] += row[j] }
        }
    }

    /// Adds the step parts' bias-gradient sums (``RecurrentSteps``; rows of `partials`) to the bias gradients:
    /// `Σ dG` to both biases of an LSTM or RNN; for a GRU (sums of `[dr, dz, dn⊙r, dn]`) `Σ [dr, dz, dn]` to `b_ih`
    /// and `Σ [dr, dz, dn⊙r]` to `b_hh`.
    private func addBiasGradients(from partials: UnsafePointer<Double>, to p: RecurrentParameters) {
        let g = p.biasIHGradient.columns, h = hiddenSize, width = RecurrentSteps.biasPartialWidth(h: h)
        let ih = p.biasIHGradient.pointer, hh = p.biasHHGradient.pointer
        for j in 0..<g {
            let inputSide = cell == .gru && j >= 2 * h ? j + h : j
            var (inputSum, hiddenSum) = (0.0, 0.0)
            for part in 0..<RecurrentSteps.maximumParts {
                inputSum += partials[part * width + inputSide]
                hiddenSum += partials[part * width + j]
            }
            ih[j] += Float(inputSum)
            hh[j] += Float(hiddenSum)
        }
    }

    /// `C += op(dG_input)·B` or, with `transposeA`, `C += dG_inputᵀ·B`, where `dG_input` is the input side's gate
    /// gradients (`T·N × G·H`): all of `dG` for an LSTM or RNN, `[dr, dz, dn]` of a GRU's `[dr, dz, dn⊙r, dn]`, taken
    /// as two column blocks (`W_ih`'s rows `0..<2H` and `2H..<3H` go with the blocks at columns `0` and `3H`).
    /// `transposeA`: `C` is `G·H × F` (`dW_ih`), `B` is `T·N × F` (the layer's inputs). Otherwise `C` is `T·N × F`
    /// (`dX`, `beta` 0 or 1) and `B` is `G·H × F` (`W_ih`).
    private func addInputSideProduct(_ c: Matrix, _ dG: Matrix, _ b: Matrix, transposeA: Bool, beta: Float) {
        guard cell == .gru else {
            gemm(c, dG, b, transposeA: transposeA, beta: beta)
            return
        }
        let h = hiddenSize, f = c.columns, width = dG.columns, rows = dG.rows
        // Block `[first, first + count)` of W_ih's rows goes with dG's columns from `column` on (no array: this runs
        // in every training step).
        func block(first: Int, count: Int, column: Int) {
            if transposeA {  // dW_ih[first..<first+count] += dG[:, column..<column+count]ᵀ · X
                gemm(m: count, n: f, k: rows, a: dG.pointer + column, lda: width, b: b.pointer, ldb: f,
                     c: c.pointer + first * f, ldc: f, transposeA: true, beta: 1)
            } else {  // dX (+)= dG[:, column..<column+count] · W_ih[first..<first+count]
                gemm(m: rows, n: f, k: count, a: dG.pointer + column, lda: width, b: b.pointer + first * f, ldb: f,
                     c: c.pointer, ldc: f, beta: first == 0 ? beta : 1)
            }
        }
        block(first: 0, count: 2 * h, column: 0)  // r, z
        block(first: 2 * h, count: h, column: 3 * h)  // n: dn, after dn⊙r
    }

    func backward(dInput: Matrix?, dInitialState: RecurrentState?, dOutput: Matrix?, dFinalState: RecurrentState?,
                  input: Matrix, context: LayerContext) {
        let (n, t) = checkedShape(input: input, output: dOutput, dInput: dInput,
                                  states: (dInitialState, dFinalState),
                                  context: context, backward: true)
        let b = Buffers(self, context, n: n, t: t, backward: true)
        let h = hiddenSize, dh = b.hiddenGradient, dc = b.cellGradient
        let partials = b.biasPartials!.bindMemory(to: Double.self, capacity: Buffers.biasPartialCount(h: h))
        var source: SequenceGradient = dOutput.map { .batchFirst($0) } ?? .none
        let oneHot = b.oneHot.pointer[0] == 1
        for k in stride(from: numLayers - 1, through: 0, by: -1) {
            let x: Matrix? = k == 0 && oneHot ? nil : layerInput(k, b)
            let dX: Matrix? = k == 0 ? (dInput == nil ? nil : b.inputGradient)
                : (k % 2 == 0 ? b.sequenceGradients.0 : b.sequenceGradients.1)
            for d in 0..<directions {
                let index = k * directions + d, r = b.record(index), p = layers[index]
                if let dFinalState {
                    dh.assign(dFinalState.hidden.rows((index * n)..<((index + 1) * n)))
                    if cell == .lstm, let cellGradient = dFinalState.cell { dc.assign(cellGradient.rows((index * n)..<((index + 1) * n))) }
                } else {
                    dh.fill(0)
                }
                if cell == .lstm && dFinalState?.cell == nil { dc.fill(0) }
                partials.update(repeating: 0, count: Buffers.biasPartialCount(h: h))
                // W_hh (`G·H × H`), packed once for every step's `dhₜ₋₁ = dGₜ·W_hh`.
                let recurrentWeight = PackedOperand(p.weightHH.pointer, ldb: h, k: p.weightHH.rows, n: h, transposed: false,
                                                    storage: b.packedRecurrentWeight.pointer)
                for i in 0..<t {
                    let step = d == 0 ? t - 1 - i : i, (current, previous) = Self.blocks(step: step, direction: d)
                    let needsPrevious = i < t - 1 || dInitialState != nil
                    addSequenceGradient(dh, source, step: step, direction: d, n: n, t: t)
                    let dG = r.step(b.gateGradients, step)
                    switch cell {
                    case .lstm:
                        RecurrentSteps.lstmBackward(.init(gateGradients: dG.pointer, cellGradient: dc.pointer, hiddenGradient: dh.pointer,
                                                          gates: r.step(r.gates, step).pointer, cellTanh: r.step(r.cellTanh, step).pointer,
                                                          previousCell: r.block(r.cells, previous).pointer, weightHH: recurrentWeight,
                                                          biasPartials: partials, h: h, n: n, needsPrevious: needsPrevious))  // dG; dhₜ₋₁ = dGₜ·W_hh
                    case .gru:
                        RecurrentSteps.gruBackward(.init(gateGradients: dG.pointer, hiddenGradient: dh.pointer,
                                                         gates: r.step(r.gates, step).pointer, hiddenN: r.step(r.hiddenN, step).pointer,
                                                         previousHidden: r.block(r.hidden, previous).pointer,
                                                         weightHH: recurrentWeight, biasPartials: partials, h: h, n: n,
                                                         needsPrevious: needsPrevious))  // dhₜ₋₁ = dhₜ∘z + [dr, dz, dn∘r]·W_hh
                    case .rnnTanh, .rnnReLU:
                        RecurrentSteps.rnnBackward(.init(delta: dG.pointer, hiddenGradient: dh.pointer,
                                                         hidden: r.block(r.hidden, current).pointer, weightHH: recurrentWeight,
                                                         biasPartials: partials, h: h, n: n, relu: cell == .rnnReLU,
                                                         needsPrevious: needsPrevious))  // δ; dhₜ₋₁ = δₜ·W_hh
                    }
                }
                if let dInitialState {
                    dInitialState.hidden.rows((index * n)..<((index + 1) * n)).assign(dh)
                    if cell == .lstm, let cellGradient = dInitialState.cell { cellGradient.rows((index * n)..<((index + 1) * n)).assign(dc) }
                }
                // The weight gradients of all steps: W_hh against each step's previous state (the initial state too).
                let previousStates = r.hidden.rows(d == 0 ? 0..<(t * n) : n..<((t + 1) * n)), dG = b.gateGradients
                if cell == .gru {  // the recurrent side is [dr, dz, dn⊙r], the first 3H columns of dG
                    gemm(m: 3 * h, n: h, k: t * n, a: dG.pointer, lda: dG.columns, b: previousStates.pointer, ldb: h,
                         c: p.weightHHGradient.pointer, ldc: h, transposeA: true, beta: 1)
                } else {
                    gemm(p.weightHHGradient, dG, previousStates, transposeA: true, beta: 1)
                }
                addBiasGradients(from: partials, to: p)
                if let x {
                    addInputSideProduct(p.weightIHGradient, dG, x, transposeA: true, beta: 1)
                } else {  // dW_ih[:, c] += dG_input[row] for each step's index c
                    let g = p.weightIHGradient.rows, f = inputSize, dwt = b.transposedWeight, indices = b.oneHot.pointer + 1
                    let skip = cell == .gru ? h : 0  // a GRU's input-side dn is at column 3H, after dn⊙r
                    dwt.fill(0)
                    for row in 0..<(t * n) {
                        let out = dwt.pointer + Int(indices[row]) * g, source = dG.pointer + row * dG.columns
                        for j in 0..<g { out[j] += source[j < 2 * h ? j : j + skip] }
                    }
                    let dw = p.weightIHGradient.pointer
                    for j in 0..<g { for c in 0..<f { dw[j * f + c] += dwt.pointer[c * g + j] } }
                }
                if let dX { addInputSideProduct(dX, dG, p.weightIH, transposeA: false, beta: d == 0 ? 0 : 1) }
            }
            if k > 0, let dX {
                if context.isTraining && dropout > 0 && b.ownInputs { applyDropout(dX, layer: k - 1, n: n, t: t, context: context) }
                source = .timeMajor(dX)
            }
        }
        b.biasPartials!.bindMemory(to: Float.self, capacity: 2 * Buffers.biasPartialCount(h: h))  // the scratch's floats again
        if let dInput {
            let f = inputSize
            for s in 0..<n {
                for step in 0..<t {
                    (dInput.pointer + (s * t + step) * f).update(from: b.inputGradient.pointer + (step * n + s) * f, count: f)
                }
            }
        }
    }
}

/// A recurrent layer over batch-first sequences whose machinery is a ``RecurrentStack``: ``RNN``, ``LSTM``, ``GRU``.
/// Everything but the cell is shared here: the ``Layer`` passes (`N × T·F` in, `N × T·D·H` or `N × D·H` out, the
/// state starting at zero), the passes with an explicit state, parameters and names.
public protocol RecurrentLayer: Layer {
    /// The layers, directions and parameters.
    var stack: RecurrentStack { get }
}

extension RecurrentLayer {
    /// `F`, the features of one step.
    public var inputSize: Int { stack.inputSize }
    /// `H`, the hidden state's size.
    public var hiddenSize: Int { stack.hiddenSize }
    /// `L`, the stacked layers.
    public var numLayers: Int { stack.numLayers }
    /// Whether each layer also runs backwards over the sequence.
    public var bidirectional: Bool { stack.bidirectional }
    /// `D`: 2 when bidirectional, else 1.
    public var directions: Int { stack.directions }
    /// The probability of dropping each output of a layer below the top one, in training.
    public var dropout: Float { stack.dropout }
    /// Whether the output is every step's hidden state (`N × T·D·H`) or only the last step's (`N × D·H`).
    public var returnsSequences: Bool { stack.returnsSequences }
    /// The first layer's forward-direction parameters (all of them: ``RecurrentStack/layers``).
    public var weights: RecurrentParameters { stack.layers[0] }
    /// The first layer's forward-direction `W_ih` (`G·H × F`), `W_hh` (`G·H × H`), `b_ih`, `b_hh` (`1 × G·H`), and
    /// their gradients.
    public var weightIH: Matrix { weights.weightIH }
    public var weightHH: Matrix { weights.weightHH }
    public var biasIH: Matrix { weights.biasIH }
    public var biasHH: Matrix { weights.biasHH }
    public var weightIHGradient: Matrix { weights.weightIHGradient }
    public var weightHHGradient: Matrix { weights.weightHHGradient }
    public var biasIHGradient: Matrix { weights.biasIHGradient }
    public var biasHHGradient: Matrix { weights.biasHHGradient }

    public var parameters: [Matrix] { stack.parameters }
    public var parameterGradients: [Matrix] { stack.gradients }
    /// `weight_ih_l{k}`, `weight_hh_l{k}`, `bias_ih_l{k}`, `bias_hh_l{k}` (and `…_l{k}_reverse`) for each layer, as in
    /// PyTorch's state_dict.
    public var parameterNames: [TensorName] { stack.names }

    /// PyTorch's default (and ``Initializer/pytorchDefault``): every parameter from `U(−1/√H, 1/√H)`. Another
    /// initializer draws the weights with fan-in `F` (or `D·H`, or `H`) and fan-out `G·H`, and zero biases.
    public func initialize(_ initializer: Initializer, using generator: inout SeededGenerator) {
        stack.initialize(initializer, using: &generator)
    }

    /// `T·D·H` for an input of `T` whole steps (`D·H` with only the last step's output); stops otherwise.
    public func outputSize(forInputSize inputSize: Int) -> Int {
        guard let size = outputSizeIfAccepted(forInputSize: inputSize) else {
            preconditionFailure("\(Self.self): an input of \(inputSize) features is not a whole number of steps of \(self.inputSize)")
        }
        return size
    }

    public func outputSizeIfAccepted(forInputSize inputSize: Int) -> Int? { stack.outputSizeIfAccepted(forInputSize: inputSize) }

    public func scratchCount(rows: Int, inputSize: Int, backward: Bool) -> Int {
        stack.scratchCount(rows: rows, inputSize: inputSize, backward: backward)
    }

    /// The output from a zero state (see ``forward(output:finalState:input:initialState:context:)``).
    public func forward(output: Matrix, input: Matrix, context: LayerContext) {
        stack.forward(output: output, finalState: nil, input: input, initialState: nil, context: context)
    }

    public func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix, context: LayerContext) {
        stack.backward(dInput: dInput, dInitialState: nil, dOutput: dOutput, dFinalState: nil, input: input, context: context)
    }

    /// The forward pass with an explicit state: from `initialState` (`nil`: zeros) writes `output` (`N × T·D·H`, or
    /// `N × D·H`) and, if given, the state after the last step into `finalState` (see ``RecurrentState`` for the
    /// shapes). `context` as for ``Layer/forward(output:input:context:)``.
    public func forward(output: Matrix, finalState: RecurrentState?, input: Matrix, initialState: RecurrentState?,
                        context: LayerContext) {
        stack.forward(output: output, finalState: finalState, input: input, initialState: initialState, context: context)
    }

    /// The backward pass with an explicit state, after that forward pass with the same `context`: from the gradient
    /// of the output (`dOutput`; `nil` when the loss does not use it) and of the final state (`dFinalState`; `nil`
    /// when the loss does not use it), adds every parameter's gradient and writes `dInput` and `dInitialState`
    /// (each when given). A chunk of truncated backpropagation through time passes `dInitialState: nil`: the
    /// gradient stops at the carried state.
    public func backward(dInput: Matrix?, dInitialState: RecurrentState?, dOutput: Matrix?, dFinalState: RecurrentState?,
                         input: Matrix, context: LayerContext) {
        stack.backward(dInput: dInput, dInitialState: dInitialState, dOutput: dOutput, dFinalState: dFinalState,
                       input: input, context: context)
    }

    /// `(output, state) = layer(input, state)` in evaluation mode: runs `input` (`N × T·F`) from `state` (`nil`:
    /// zeros) and returns the output and the state after the last step. Allocates its results and scratch; a loop
    /// that runs many batches should use ``forward(output:finalState:input:initialState:context:)`` with its own.
    public func callAsFunction(_ input: Matrix, _ state: RecurrentState? = nil) -> (output: Matrix, state: RecurrentState) {
        precondition(outputSizeIfAccepted(forInputSize: input.columns) != nil,
                     "\(Self.self): input \(input.shapeDescription) is not a whole number of steps of \(inputSize) features")
        let output = Matrix(rows: input.rows, columns: outputSize(forInputSize: input.columns))
        let final = RecurrentState(zerosFor: self, sequences: input.rows)
        let scratch = Matrix(rows: 1, columns: scratchCount(rows: input.rows, inputSize: input.columns, backward: false))
        forward(output: output, finalState: final, input: input, initialState: state,
                context: LayerContext(mode: .evaluation, scratch: scratch, scratchIncludesBackward: false))
        return (output, final)
    }
}
