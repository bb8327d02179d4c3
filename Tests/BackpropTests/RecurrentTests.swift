@_spi(Internals) @testable import Backprop
import BackpropTestSupport
import CSIMD
import Foundation
import Testing

/// The LSTM against torch.nn.LSTM (Tests/Fixtures/golden_lstm.py: outputs, h_n, c_n and every gradient, 1e-5) and
/// against finite differences.
@Suite("Recurrent layers")
struct RecurrentTests {
    static func lstm(returnsSequences: Bool) throws -> LSTM {
        let network = Network(inputSize: 15, layers: [LSTM(inputSize: 3, hiddenSize: 4, returnsSequences: returnsSequences)])
        try network.loadStateDict([
            "0.weight_ih_l0": .init(shape: [16, 3], values: GoldenLSTM.weight_ih_l0),
            "0.weight_hh_l0": .init(shape: [16, 4], values: GoldenLSTM.weight_hh_l0),
            "0.bias_ih_l0": .init(shape: [16], values: GoldenLSTM.bias_ih_l0),
            "0.bias_hh_l0": .init(shape: [16], values: GoldenLSTM.bias_hh_l0),
        ])
        return network.layers[0] as! LSTM
    }

    @Test(arguments: [true, false])
    func matchesPyTorch(returnsSequences: Bool) throws {
        let layer = try Self.lstm(returnsSequences: returnsSequences)
        let x = Matrix(rows: 2, columns: 15, values: GoldenLSTM.x)
        let width = returnsSequences ? 20 : 4
        let (golden, r): ([Double], [Float]) = returnsSequences ? (GoldenLSTM.Sequence.output, GoldenLSTM.Sequence.r)
                                                               : (GoldenLSTM.Last.output, GoldenLSTM.Last.r)
        let y = Matrix(rows: 2, columns: width), dy = Matrix(rows: 2, columns: width, values: r), dx = Matrix(rows: 2, columns: 15)
        let context = LayerContext(mode: .training,
                                   scratch: Matrix(rows: 1, columns: layer.scratchCount(rows: 2, inputSize: 15, backward: true)))
        layer.forward(output: y, input: x, context: context)
        expectClose(y.scalars, golden, "output")
        for g in layer.parameterGradients { g.fill(0) }
        layer.backward(dInput: dx, dOutput: dy, input: x, output: y, context: context)
        let expected: [[Double]] = returnsSequences
            ? [GoldenLSTM.Sequence.dx, GoldenLSTM.Sequence.d_weight_ih_l0, GoldenLSTM.Sequence.d_weight_hh_l0,
               GoldenLSTM.Sequence.d_bias_ih_l0, GoldenLSTM.Sequence.d_bias_hh_l0]
            : [GoldenLSTM.Last.dx, GoldenLSTM.Last.d_weight_ih_l0, GoldenLSTM.Last.d_weight_hh_l0,
               GoldenLSTM.Last.d_bias_ih_l0, GoldenLSTM.Last.d_bias_hh_l0]
        for (name, (actual, reference)) in zip(["dx", "dW_ih", "dW_hh", "db_ih", "db_hh"],
                                               zip([dx] + layer.parameterGradients, expected)) {
            expectClose(actual.scalars, reference, relative: 1e-5, absolute: 1e-6, "\(name)")
        }
        // h_n is the last step's output.
        let last = returnsSequences ? Array(y.scalars.enumerated().filter { ($0.offset % 20) >= 16 }.map(\.element)) : y.scalars
        expectClose(last, GoldenLSTM.Sequence.hn, "h_n")
    }

    @Test(arguments: [true, false])
    func passesTheGradientCheck(returnsSequences: Bool) {
        let layer = LSTM(inputSize: 3, hiddenSize: 5, returnsSequences: returnsSequences, seed: 2)
        let result = gradientCheck(layer, input: randomMatrix(4, 12, seed: 3, in: -1...1), epsilon: 1e-2)
        #expect(result.passes(tolerance: 2e-2), "\(result)")
    }

    @Test func savesWithPyTorchsNamesAndLoads() throws {
        let folder = TemporaryFolder()
        let network = Network(inputSize: 28 * 28, layers: [LSTM(inputSize: 28, hiddenSize: 8, returnsSequences: false),
                                                          Dense(inputSize: 8, outputSize: 10)], initializer: .pytorchDefault, seed: 1)
        #expect(network.stateDict.map(\.name) == ["0.weight_ih_l0", "0.weight_hh_l0", "0.bias_ih_l0", "0.bias_hh_l0", "1.weight", "1.bias"])
        let path = "\(folder.path)/lstm.safetensors"
        try network.save(to: path)
        let loaded = try Network.load(from: path)
        let x = randomMatrix(3, 784, seed: 4)
        #expect(loaded(x).scalars.map(\.bitPattern) == network(x).scalars.map(\.bitPattern))
    }

    @Test(arguments: [true, false])
    func theGRUMatchesPyTorch(returnsSequences: Bool) throws {
        let network = Network(inputSize: 15, layers: [GRU(inputSize: 3, hiddenSize: 4, returnsSequences: returnsSequences)])
        try network.loadStateDict([
            "0.weight_ih_l0": .init(shape: [12, 3], values: GoldenGRU.weight_ih_l0),
            "0.weight_hh_l0": .init(shape: [12, 4], values: GoldenGRU.weight_hh_l0),
            "0.bias_ih_l0": .init(shape: [12], values: GoldenGRU.bias_ih_l0),
            "0.bias_hh_l0": .init(shape: [12], values: GoldenGRU.bias_hh_l0),
        ])
        let layer = network.layers[0] as! GRU
        let x = Matrix(rows: 2, columns: 15, values: GoldenGRU.x)
        let width = returnsSequences ? 20 : 4
        let (golden, r): ([Double], [Float]) = returnsSequences ? (GoldenGRU.Sequence.output, GoldenGRU.Sequence.r)
                                                               : (GoldenGRU.Last.output, GoldenGRU.Last.r)
        let y = Matrix(rows: 2, columns: width), dy = Matrix(rows: 2, columns: width, values: r), dx = Matrix(rows: 2, columns: 15)
        let context = LayerContext(mode: .training,
                                   scratch: Matrix(rows: 1, columns: layer.scratchCount(rows: 2, inputSize: 15, backward: true)))
        layer.forward(output: y, input: x, context: context)
        expectClose(y.scalars, golden, "output")
        for g in layer.parameterGradients { g.fill(0) }
        layer.backward(dInput: dx, dOutput: dy, input: x, output: y, context: context)
        let expected: [[Double]] = returnsSequences
            ? [GoldenGRU.Sequence.dx, GoldenGRU.Sequence.d_weight_ih_l0, GoldenGRU.Sequence.d_weight_hh_l0,
               GoldenGRU.Sequence.d_bias_ih_l0, GoldenGRU.Sequence.d_bias_hh_l0]
            : [GoldenGRU.Last.dx, GoldenGRU.Last.d_weight_ih_l0, GoldenGRU.Last.d_weight_hh_l0,
               GoldenGRU.Last.d_bias_ih_l0, GoldenGRU.Last.d_bias_hh_l0]
        for (name, (actual, reference)) in zip(["dx", "dW_ih", "dW_hh", "db_ih", "db_hh"],
                                               zip([dx] + layer.parameterGradients, expected)) {
            expectClose(actual.scalars, reference, relative: 1e-5, absolute: 1e-6, "GRU \(name)")
        }
        #expect(gradientCheck(GRU(inputSize: 3, hiddenSize: 5, returnsSequences: returnsSequences, seed: 2),
                              input: randomMatrix(4, 12, seed: 3)).passes(tolerance: 2e-2))
    }

    @Test(arguments: [RNN.Nonlinearity.tanh, .relu])
    func theRNNMatchesPyTorch(_ nonlinearity: RNN.Nonlinearity) throws {
        typealias G = (x: [Float], r: [Float], w: [[Float]], output: [Double], grads: [[Double]])
        let g: G = nonlinearity == .tanh
            ? (GoldenRNN.Tanh.x, GoldenRNN.Tanh.r, [GoldenRNN.Tanh.weight_ih_l0, GoldenRNN.Tanh.weight_hh_l0, GoldenRNN.Tanh.bias_ih_l0, GoldenRNN.Tanh.bias_hh_l0],
               GoldenRNN.Tanh.output, [GoldenRNN.Tanh.dx, GoldenRNN.Tanh.d_weight_ih_l0, GoldenRNN.Tanh.d_weight_hh_l0, GoldenRNN.Tanh.d_bias_ih_l0, GoldenRNN.Tanh.d_bias_hh_l0])
            : (GoldenRNN.Relu.x, GoldenRNN.Relu.r, [GoldenRNN.Relu.weight_ih_l0, GoldenRNN.Relu.weight_hh_l0, GoldenRNN.Relu.bias_ih_l0, GoldenRNN.Relu.bias_hh_l0],
               GoldenRNN.Relu.output, [GoldenRNN.Relu.dx, GoldenRNN.Relu.d_weight_ih_l0, GoldenRNN.Relu.d_weight_hh_l0, GoldenRNN.Relu.d_bias_ih_l0, GoldenRNN.Relu.d_bias_hh_l0])
        let network = Network(inputSize: 15, layers: [RNN(inputSize: 3, hiddenSize: 4, nonlinearity: nonlinearity)])
        try network.loadStateDict(["0.weight_ih_l0": .init(shape: [4, 3], values: g.w[0]), "0.weight_hh_l0": .init(shape: [4, 4], values: g.w[1]),
                                   "0.bias_ih_l0": .init(shape: [4], values: g.w[2]), "0.bias_hh_l0": .init(shape: [4], values: g.w[3])])
        let layer = network.layers[0] as! RNN
        let x = Matrix(rows: 2, columns: 15, values: g.x)
        let y = Matrix(rows: 2, columns: 20), dy = Matrix(rows: 2, columns: 20, values: g.r), dx = Matrix(rows: 2, columns: 15)
        let context = LayerContext(mode: .training,
                                   scratch: Matrix(rows: 1, columns: layer.scratchCount(rows: 2, inputSize: 15, backward: true)))
        layer.forward(output: y, input: x, context: context)
        expectClose(y.scalars, g.output, "\(nonlinearity) output")
        for gradient in layer.parameterGradients { gradient.fill(0) }
        layer.backward(dInput: dx, dOutput: dy, input: x, output: y, context: context)
        for (name, (actual, reference)) in zip(["dx", "dW_ih", "dW_hh", "db_ih", "db_hh"], zip([dx] + layer.parameterGradients, g.grads)) {
            expectClose(actual.scalars, reference, relative: 1e-5, absolute: 1e-6, "\(nonlinearity) \(name)")
        }
        // (ReLU has a kink at 0: ε small enough that no pre-activation crosses it.)
        let check = gradientCheck(RNN(inputSize: 3, hiddenSize: 5, nonlinearity: nonlinearity, seed: 2),
                                  input: randomMatrix(4, 12, seed: 5), epsilon: nonlinearity == .relu ? 1e-3 : 1e-2)
        #expect(check.passes(tolerance: 2e-2), "\(check)")
    }

    /// The LSTM step kernel's tanh (Cephes' polynomial below 0.625, exponentials above) against Double's, over
    /// [−10, 10]: within 4 ulp of the value (relative 5e-7), and exactly ±1 far out. With i = o = 1, f = 0 and
    /// c₋₁ = 0, the step gives c = tanh(x).
    @Test func theStepKernelsTanhIsAccurate() {
        let count = 20_001, h = count
        var gates = [Float](repeating: 0, count: 4 * h)
        for j in 0..<h {
            gates[j] = 60; gates[h + j] = -60; gates[3 * h + j] = 60
            gates[2 * h + j] = -10 + 20 * Float(j) / Float(count - 1)
        }
        let inputs = Array(gates[(2 * h)..<(3 * h)])
        let previous = [Float](repeating: 0, count: h)
        var c = [Float](repeating: 0, count: h), t = c, hidden = c
        bp_lstm_step(&gates, previous, &c, &t, &hidden, 1, h)
        var worst = 0.0
        for j in 0..<h {
            let exact = Foundation.tanh(Double(inputs[j]))
            worst = max(worst, abs(Double(c[j]) - exact) / max(abs(exact), 1e-30))
        }
        #expect(worst <= 5e-7, "largest relative error \(worst)")
        var far = [Float](repeating: 0, count: 4 * h)  // (the kernel activated `gates` in place)
        for j in 0..<h { (far[j], far[h + j], far[2 * h + j], far[3 * h + j]) = (60, -60, j % 2 == 0 ? 60 : -60, 60) }
        bp_lstm_step(&far, previous, &c, &t, &hidden, 1, h)
        #expect(c.enumerated().allSatisfy { $0.element == ($0.offset % 2 == 0 ? 1 : -1) })
    }
}
