@_spi(Internals) @testable import Backprop
import BackpropTestSupport
import CSIMD
import Foundation
import Testing

/// One case of Tests/Fixtures/golden_stacked.py: a stacked or bidirectional layer, with or without an initial state,
/// its loss on the output, the final state, or both, and PyTorch's values.
struct GoldenRecurrentCase: Sendable, CustomStringConvertible {
    var cell: String, nonlinearity: String, layers: Int, bidirectional: Bool, lastStepOnly: Bool, initialState: Bool
    var lossOnOutput: Bool, lossOnState: Bool
    var x: [Float], h0: [Float], c0: [Float]
    var parameters: [(String, [Int], [Float])]
    var r: [Float], s: [Float], u: [Float]
    var output: [Double], hn: [Double], cn: [Double], dx: [Double], dh0: [Double], dc0: [Double]
    var gradients: [(String, [Double])]

    var description: String {
        "\(cell)\(nonlinearity.isEmpty ? "" : "(\(nonlinearity))") \(layers) layers\(bidirectional ? " bidirectional" : "")"
            + "\(initialState ? " from a state" : "") loss on \([lossOnOutput ? (lastStepOnly ? "last output" : "outputs") : nil, lossOnState ? "final state" : nil].compactMap { $0 }.joined(separator: " and "))"
    }

    func layer(seed: UInt64 = 0) -> any RecurrentLayer {
        switch cell {
        case "LSTM": LSTM(inputSize: 3, hiddenSize: 3, numLayers: layers, bidirectional: bidirectional, returnsSequences: !lastStepOnly, seed: seed)
        case "GRU": GRU(inputSize: 3, hiddenSize: 3, numLayers: layers, bidirectional: bidirectional, returnsSequences: !lastStepOnly, seed: seed)
        default: RNN(inputSize: 3, hiddenSize: 3, nonlinearity: nonlinearity == "relu" ? .relu : .tanh, numLayers: layers,
                     bidirectional: bidirectional, returnsSequences: !lastStepOnly, seed: seed)
        }
    }
}

/// Stacked layers, two directions, explicit state and truncated backpropagation through time, against PyTorch
/// (Tests/Fixtures/golden_stacked.py, 1e-5) and finite differences.
@Suite("Recurrent stacks and state")
struct RecurrentStackTests {
    static func state(_ values: [Float], rows: Int, cell: Bool, _ cellValues: [Float]) -> RecurrentState {
        RecurrentState(hidden: Matrix(rows: rows, columns: 3, values: values),
                       cell: cell ? Matrix(rows: rows, columns: 3, values: cellValues) : nil)
    }

    @Test(arguments: goldenRecurrentStackCases)
    func matchesPyTorch(_ golden: GoldenRecurrentCase) throws {
        let network = Network(inputSize: 12, layers: [golden.layer()])
        try network.loadStateDict(Dictionary(uniqueKeysWithValues: golden.parameters.map { name, shape, values in
            ("0." + name, SafetensorsFile.Tensor(shape: shape, values: values))
        }))
        let layer = network.layers[0] as! any RecurrentLayer
        #expect(layer.parameterNames.map(\.name) == golden.parameters.map(\.0))
        let isLSTM = golden.cell == "LSTM", rows = golden.hn.count / 3
        let x = Matrix(rows: 2, columns: 12, values: golden.x)
        let initial = golden.initialState ? Self.state(golden.h0, rows: rows, cell: isLSTM, golden.c0) : nil
        let output = Matrix(rows: 2, columns: golden.output.count / 2), final = RecurrentState(zerosFor: layer, sequences: 2)
        let context = LayerContext(mode: .training, scratch: Matrix(rows: 1, columns: layer.scratchCount(rows: 2, inputSize: 12, backward: true)))
        layer.forward(output: output, finalState: final, input: x, initialState: initial, context: context)
        expectClose(output.scalars, golden.output, "\(golden): output")
        expectClose(final.hidden.scalars, golden.hn, "\(golden): h_n")
        if isLSTM { expectClose(final.cell!.scalars, golden.cn, "\(golden): c_n") }

        for gradient in layer.parameterGradients { gradient.fill(0) }
        let dx = Matrix(rows: 2, columns: 12), dInitial = RecurrentState(zerosFor: layer, sequences: 2)
        layer.backward(dInput: dx, dInitialState: golden.initialState ? dInitial : nil,
                       dOutput: golden.lossOnOutput ? Matrix(rows: 2, columns: output.columns, values: golden.r) : nil,
                       dFinalState: golden.lossOnState ? Self.state(golden.s, rows: rows, cell: isLSTM, golden.u) : nil,
                       input: x, context: context)
        expectClose(dx.scalars, golden.dx, "\(golden): dx")
        if golden.initialState {
            expectClose(dInitial.hidden.scalars, golden.dh0, "\(golden): dh0")
            if isLSTM { expectClose(dInitial.cell!.scalars, golden.dc0, "\(golden): dc0") }
        }
        for ((name, gradient), (expectedName, expected)) in zip(zip(layer.parameterNames.map(\.name), layer.parameterGradients), golden.gradients) {
            #expect(name == expectedName)
            expectClose(gradient.scalars, expected, "\(golden): d\(name)")
            // A loss on the outputs reaches every parameter, except where PyTorch's gradient is zero too (the last
            // output of the reverse direction is its first step, from the zero state: no W_hh gradient).
            #expect(gradient.scalars.contains { $0 != 0 } == expected.contains { $0 != 0 }, "\(golden): \(name)")
        }
    }

    /// No state is exactly an explicit zero state (a bug other libraries shipped), forward and backward.
    @Test(arguments: goldenRecurrentStackCases)
    func noStateIsExactlyAZeroState(_ golden: GoldenRecurrentCase) {
        let layer = golden.layer(seed: 5)
        let x = randomMatrix(3, 12, seed: 6, in: -1...1), n = x.rows
        func run(_ state: RecurrentState?) -> (output: [UInt32], final: [UInt32], dx: [UInt32], gradients: [UInt32]) {
            let output = Matrix(rows: n, columns: layer.outputSize(forInputSize: 12)), final = RecurrentState(zerosFor: layer, sequences: n)
            let context = LayerContext(mode: .training, scratch: Matrix(rows: 1, columns: layer.scratchCount(rows: n, inputSize: 12, backward: true)))
            layer.forward(output: output, finalState: final, input: x, initialState: state, context: context)
            for gradient in layer.parameterGradients { gradient.fill(0) }
            let dx = Matrix(rows: n, columns: 12), dOutput = randomMatrix(n, output.columns, seed: 7)
            layer.backward(dInput: dx, dInitialState: nil, dOutput: dOutput, dFinalState: nil, input: x, context: context)
            return (output.scalars.map(\.bitPattern), (final.hidden.scalars + (final.cell?.scalars ?? [])).map(\.bitPattern),
                    dx.scalars.map(\.bitPattern), layer.parameterGradients.flatMap(\.scalars).map(\.bitPattern))
        }
        let implicit = run(nil), explicit = run(RecurrentState(zerosFor: layer, sequences: n))
        #expect(implicit == explicit)
        // And the plain Layer passes are those passes.
        let y = Matrix(rows: n, columns: layer.outputSize(forInputSize: 12))
        layer.forward(output: y, input: x, context: LayerContext(scratch: Matrix(rows: 1, columns: layer.scratchCount(rows: n, inputSize: 12, backward: false)),
                                                                 scratchIncludesBackward: false))
        #expect(y.scalars.map(\.bitPattern) == implicit.output)
    }

    /// Finite differences through every layer, direction and the dropout between layers (a fixed mask).
    @Test(arguments: [(2, false, Float(0.3)), (2, true, 0.3), (3, true, 0)])
    func passesTheGradientCheck(layers: Int, bidirectional: Bool, dropout: Float) {
        let cells: [any RecurrentLayer] = [
            LSTM(inputSize: 3, hiddenSize: 4, numLayers: layers, bidirectional: bidirectional, dropout: dropout, seed: 2),
            GRU(inputSize: 3, hiddenSize: 4, numLayers: layers, bidirectional: bidirectional, dropout: dropout, returnsSequences: false, seed: 3),
            RNN(inputSize: 3, hiddenSize: 4, numLayers: layers, bidirectional: bidirectional, dropout: dropout, seed: 4),
        ]
        for layer in cells {
            let result = gradientCheck(layer, input: randomMatrix(3, 12, seed: 3, in: -1...1), randomIndex: 9, epsilon: 1e-2)
            #expect(result.passes(tolerance: 2e-2), "\(type(of: layer)) \(layers) layers: \(result)")
        }
    }

    /// Dropout between layers drops about p of the lower layers' outputs in training only, the same mask for the
    /// same random index, another for another; evaluation is deterministic and equals a layer without dropout.
    @Test func dropoutBetweenLayersActsInTrainingOnly() {
        let with = LSTM(inputSize: 3, hiddenSize: 8, numLayers: 2, dropout: 0.5, seed: 11)
        let without = LSTM(inputSize: 3, hiddenSize: 8, numLayers: 2, seed: 12)
        for (mine, theirs) in zip(without.parameters, with.parameters) { mine.assign(theirs) }
        let x = randomMatrix(16, 30, seed: 1, in: -1...1)
        func run(_ layer: LSTM, _ mode: LayerContext.Mode, _ index: UInt64) -> [Float] {
            let y = Matrix(rows: 16, columns: 80)
            layer.forward(output: y, input: x, context: LayerContext(mode: mode, scratch: Matrix(rows: 1, columns: layer.scratchCount(rows: 16, inputSize: 30, backward: true)),
                                                                     randomIndex: index))
            return y.scalars
        }
        let same = run(with, .evaluation, 1) == run(without, .evaluation, 1)
        #expect(same)
        let repeatable = run(with, .training, 1) == run(with, .training, 1)
        #expect(repeatable)
        let newMask = run(with, .training, 1) != run(with, .training, 2)
        #expect(newMask)
        let drops = run(with, .training, 1) != run(without, .training, 1)
        #expect(drops)
        let plain = run(without, .training, 1) == run(without, .evaluation, 1)
        #expect(plain)
    }

    /// Truncated BPTT: two chunks with the state carried give exactly the output of the whole sequence at once; the
    /// gradient of the second chunk stops at the carried state.
    @Test func chunksWithTheStateCarriedAreTheWholeSequence() {
        let layer = LSTM(inputSize: 2, hiddenSize: 5, numLayers: 2, bidirectional: false, seed: 8)
        let x = randomMatrix(3, 12, seed: 2, in: -1...1)  // 6 steps of 2
        let (whole, wholeState) = layer(x)
        let first = Matrix(rows: 3, columns: 6), second = Matrix(rows: 3, columns: 6)
        for s in 0..<3 {
            for j in 0..<6 { first[s, j] = x[s, j]; second[s, j] = x[s, 6 + j] }
        }
        let (out1, state1) = layer(first)
        let (out2, state2) = layer(second, state1)
        for s in 0..<3 {
            #expect((0..<15).map { whole[s, $0] } == (0..<15).map { out1[s, $0] })
            #expect((0..<15).map { whole[s, 15 + $0] } == (0..<15).map { out2[s, $0] })
        }
        #expect(wholeState.hidden.scalars == state2.hidden.scalars && wholeState.cell!.scalars == state2.cell!.scalars)
    }

    /// A loss on the final state only reaches every parameter; global-norm clipping scales the gradient of all
    /// steps and layers as one vector (SGD with rate 1 moves the parameters by exactly the clip norm).
    @Test func aLossOnTheFinalStateReachesEveryParameterAndClipsAsAWhole() throws {
        let layer = GRU(inputSize: 3, hiddenSize: 4, numLayers: 2, bidirectional: true, seed: 4)
        let x = randomMatrix(2, 30, seed: 5, in: -3...3)
        let final = RecurrentState(zerosFor: layer, sequences: 2)
        let context = LayerContext(mode: .training, scratch: Matrix(rows: 1, columns: layer.scratchCount(rows: 2, inputSize: 30, backward: true)))
        layer.forward(output: Matrix(rows: 2, columns: 80), finalState: final, input: x, initialState: nil, context: context)
        for gradient in layer.parameterGradients { gradient.fill(0) }
        layer.backward(dInput: nil, dInitialState: nil, dOutput: nil,
                       dFinalState: RecurrentState(hidden: Matrix(rows: 8, columns: 4, values: Array(repeating: 1, count: 32))),
                       input: x, context: context)
        for (name, gradient) in zip(layer.parameterNames.map(\.name), layer.parameterGradients) {
            #expect(gradient.scalars.contains { $0 != 0 }, "\(name) got no gradient")
        }

        let network = Network(inputSize: 30, layers: [LSTM(inputSize: 3, hiddenSize: 4, numLayers: 2, returnsSequences: false, seed: 1),
                                                      Dense(inputSize: 4, outputSize: 2)], initializer: .pytorchDefault, seed: 2)
        let trainer = Trainer(network: network, loss: MeanSquaredError(), optimizer: SGD(learningRate: 1), batchSize: 2)
        trainer.clipNorm = 0.5
        let before = network.parameters.scalars
        _ = try trainer.trainStep(input: x, targets: Matrix(rows: 2, columns: 2, values: [100, -100, 50, 80]))
        var squares = 0.0
        for (a, b) in zip(network.parameters.scalars, before) { squares += Double(a - b) * Double(a - b) }
        let moved = squares.squareRoot()
        #expect(abs(moved - 0.5) < 1e-4, "moved \(moved)")
    }

    /// A one-hot input takes a gather instead of the input GEMMs; it gives what the GEMMs give (the same input with
    /// one 0 replaced by 10⁻³⁰ takes them), forward and backward, for every cell, stacked and in both directions.
    @Test func oneHotInputsGiveWhatTheGEMMsGive() {
        let layers: [any RecurrentLayer] = [
            LSTM(inputSize: 5, hiddenSize: 4, numLayers: 2, bidirectional: true, seed: 1),
            GRU(inputSize: 5, hiddenSize: 4, seed: 2), RNN(inputSize: 5, hiddenSize: 4, nonlinearity: .relu, numLayers: 2, seed: 3),
        ]
        var generator = SeededGenerator(seed: 4)
        let oneHot = Matrix(rows: 3, columns: 30)  // 3 sequences of 6 steps of 5
        for row in 0..<3 { for step in 0..<6 { oneHot[row, step * 5 + Int(generator.next() % 5)] = 1 } }
        let nearly = oneHot.copy()
        for j in 0..<30 where nearly[2, j] == 0 { nearly[2, j] = 1e-30; break }
        for layer in layers {
            func run(_ x: Matrix) -> (output: [Float], dx: [Float], gradients: [Float]) {
                let output = Matrix(rows: 3, columns: layer.outputSize(forInputSize: 30))
                let context = LayerContext(mode: .training, scratch: Matrix(rows: 1, columns: layer.scratchCount(rows: 3, inputSize: 30, backward: true)))
                layer.forward(output: output, input: x, context: context)
                for gradient in layer.parameterGradients { gradient.fill(0) }
                let dx = Matrix(rows: 3, columns: 30)
                layer.backward(dInput: dx, dOutput: randomMatrix(3, output.columns, seed: 5), input: x, output: output, context: context)
                return (output.scalars, dx.scalars, layer.parameterGradients.flatMap(\.scalars))
            }
            let fast = run(oneHot), dense = run(nearly)
            expectClose(fast.output, dense.output.map(Double.init), "\(type(of: layer)) output")
            expectClose(fast.dx, dense.dx.map(Double.init), "\(type(of: layer)) dx")
            expectClose(fast.gradients, dense.gradients.map(Double.init), "\(type(of: layer)) gradients")
        }
    }

    /// With two threads (each step's rows split between them: the recurrent GEMM and the cell's kernel of each
    /// half on one thread) the results are those of one thread, forward and backward, for every cell, stacked and in
    /// both directions. 1 400 sequences of hidden size 40 are enough rows for every cell's step to split.
    @Test func sequencesSplitBetweenThreadsGiveWhatOneThreadGives() {
        let (n, h) = (1400, 40)
        #expect(2 * RecurrentSteps.minimumRows(width: h, depth: h) <= n, "the RNN's steps must split, or this tests nothing")
        let layers: [any RecurrentLayer] = [
            LSTM(inputSize: 3, hiddenSize: h, numLayers: 2, bidirectional: true, seed: 1),
            GRU(inputSize: 3, hiddenSize: h, returnsSequences: false, seed: 2), RNN(inputSize: 3, hiddenSize: h, numLayers: 2, seed: 3),
        ]
        let x = randomMatrix(n, 9, seed: 4, in: -1...1)
        for layer in layers {
            func run(threads: Int) -> [Float] {
                Parallel.withThreadCount(threads) {
                    let output = Matrix(rows: n, columns: layer.outputSize(forInputSize: 9)), final = RecurrentState(zerosFor: layer, sequences: n)
                    let context = LayerContext(mode: .training, scratch: Matrix(rows: 1, columns: layer.scratchCount(rows: n, inputSize: 9, backward: true)))
                    layer.forward(output: output, finalState: final, input: x, initialState: nil, context: context)
                    for gradient in layer.parameterGradients { gradient.fill(0) }
                    let dx = Matrix(rows: n, columns: 9), dInitial = RecurrentState(zerosFor: layer, sequences: n)
                    layer.backward(dInput: dx, dInitialState: dInitial, dOutput: randomMatrix(n, output.columns, seed: 5),
                                   dFinalState: nil, input: x, context: context)
                    return output.scalars + final.hidden.scalars + dx.scalars + dInitial.hidden.scalars + layer.parameterGradients.flatMap(\.scalars)
                }
            }
            // With the AVX-512 panel kernel every half multiplies exactly as the whole does (1e-5); without it (AMD
            // EPYC before Zen 4, here) the recurrent products are `sgemm` calls whose kernel OpenBLAS picks by size,
            // so a half of the rows may sum in another order: 3·10⁻⁵ relative, 2.3·10⁻⁶ absolute apart was seen.
            let (relative, absolute) = bp_has_avx512f() != 0 ? (1e-5, 1e-6) : (1e-4, 1e-5)
            expectClose(run(threads: 2), run(threads: 1).map(Double.init), relative: relative, absolute: absolute, "\(type(of: layer))")
        }
    }

    /// `scratchEstimate`, which the command line sizes memory with before allocating, is at least the scratch a
    /// layer asks for, forward and backward, also for one short sequence (where the packed `W_hh`, padded to panels
    /// of 32 columns, and the other buffers that do not grow with the batch are most of it).
    @Test func scratchEstimateBoundsTheScratch() {
        for cell in [RecurrentCell.lstm, .gru, .rnnTanh] {
            for (f, h, layers, directions) in [(3, 5, 1, 1), (28, 128, 1, 1), (100, 33, 2, 2), (1, 200, 1, 1)] {
                let layer: any RecurrentLayer = switch cell {
                case .lstm: LSTM(inputSize: f, hiddenSize: h, numLayers: layers, bidirectional: directions == 2, seed: 1)
                case .gru: GRU(inputSize: f, hiddenSize: h, numLayers: layers, bidirectional: directions == 2, seed: 1)
                default: RNN(inputSize: f, hiddenSize: h, numLayers: layers, bidirectional: directions == 2, seed: 1)
                }
                for (rows, steps) in [(1, 1), (2, 3), (64, 28)] {
                    let estimate = RecurrentStack.scratchEstimate(cell: cell, inputSize: f, hiddenSize: h, numLayers: layers,
                                                                  directions: directions, rows: rows, steps: steps)
                    let needed = layer.scratchCount(rows: rows, inputSize: steps * f, backward: true)
                    #expect(estimate >= Double(needed), "\(cell) \(f)→\(h)×\(layers)×\(directions), \(rows)×\(steps): \(estimate) < \(needed)")
                }
            }
        }
    }

    /// Settings saved before stacking existed read as one layer, one direction; new settings round-trip.
    @Test func savedSettingsRoundTripAndOldOnesRead() throws {
        let old = #"{"inputSize":28,"hiddenSize":8,"returnsSequences":false}"#
        let settings = try JSONDecoder().decode(LSTM.Settings.self, from: Data(old.utf8))
        #expect(settings.numLayers == 1 && !settings.bidirectional && settings.dropout == 0)
        let layer = GRU(inputSize: 3, hiddenSize: 4, numLayers: 2, bidirectional: true, dropout: 0.25, returnsSequences: false)
        let copy = try GRU(settings: JSONDecoder().decode(GRU.Settings.self, from: JSONEncoder().encode(layer.settings)))
        #expect(copy.settings == layer.settings && copy.parameterNames.map(\.name) == layer.parameterNames.map(\.name))
        #expect(GRU.parameterCount(for: layer.settings) == layer.parameters.reduce(0) { $0 + $1.count })
    }
}
