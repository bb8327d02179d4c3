@_spi(Internals) @testable import Backprop
import BackpropTestSupport
import CSIMD
import Foundation
import Testing

/// RNN, LSTM and GRU against torch.nn.RNN, nn.LSTM and nn.GRU (Tests/Fixtures/golden_*.py: outputs and every
/// gradient, 1e-5) and against finite differences.
@Suite("Recurrent layers")
struct RecurrentTests {
    /// PyTorch's reference for one recurrent layer: its parameters (PyTorch's layout), the input, `R` of the loss
    /// `Σ output ∘ R`, the output, and the gradients of `x`, `W_ih`, `W_hh`, `b_ih`, `b_hh`.
    struct Reference {
        var parameters: [[Float]], x: [Float], r: [Float], output: [Double], gradients: [[Double]]
    }

    /// Loads `reference.parameters` into `layer` (2 sequences of 5 steps of 3 features), runs both passes directly,
    /// and compares the output and every gradient with PyTorch's to 1e-5. Returns the output.
    @discardableResult
    static func expectMatches(_ layer: some RecurrentLayer, _ reference: Reference, _ label: String,
                              sourceLocation: SourceLocation = #_sourceLocation) throws -> Matrix {
        let network = Network(inputSize: 15, layers: [layer])
        let g = layer.weights.gates * layer.hiddenSize, h = layer.hiddenSize
        try network.loadStateDict(Dictionary(uniqueKeysWithValues: zip(["0.weight_ih_l0", "0.weight_hh_l0", "0.bias_ih_l0", "0.bias_hh_l0"],
            zip([[g, 3], [g, h], [g], [g]], reference.parameters).map { SafetensorsFile.Tensor(shape: $0.0, values: $0.1) })))
        let loaded = network.layers[0] as! any RecurrentLayer
        let width = reference.output.count / 2
        let x = Matrix(rows: 2, columns: 15, values: reference.x)
        let y = Matrix(rows: 2, columns: width), dy = Matrix(rows: 2, columns: width, values: reference.r), dx = Matrix(rows: 2, columns: 15)
        let context = LayerContext(mode: .training,
                                   scratch: Matrix(rows: 1, columns: loaded.scratchCount(rows: 2, inputSize: 15, backward: true)))
        loaded.forward(output: y, input: x, context: context)
        expectClose(y.scalars, reference.output, "\(label) output", sourceLocation: sourceLocation)
        for gradient in loaded.parameterGradients { gradient.fill(0) }
        loaded.backward(dInput: dx, dOutput: dy, input: x, output: y, context: context)
        for (name, (actual, expected)) in zip(["dx", "dW_ih", "dW_hh", "db_ih", "db_hh"],
                                               zip([dx] + loaded.parameterGradients, reference.gradients)) {
            expectClose(actual.scalars, expected, relative: 1e-5, absolute: 1e-6, "\(label) \(name)", sourceLocation: sourceLocation)
        }
        return y
    }

    @Test(arguments: [true, false])
    func matchesPyTorch(returnsSequences: Bool) throws {
        typealias S = GoldenLSTM.Sequence
        typealias L = GoldenLSTM.Last
        let parameters = [GoldenLSTM.weight_ih_l0, GoldenLSTM.weight_hh_l0, GoldenLSTM.bias_ih_l0, GoldenLSTM.bias_hh_l0]
        let reference = returnsSequences
            ? Reference(parameters: parameters, x: GoldenLSTM.x, r: S.r, output: S.output,
                        gradients: [S.dx, S.d_weight_ih_l0, S.d_weight_hh_l0, S.d_bias_ih_l0, S.d_bias_hh_l0])
            : Reference(parameters: parameters, x: GoldenLSTM.x, r: L.r, output: L.output,
                        gradients: [L.dx, L.d_weight_ih_l0, L.d_weight_hh_l0, L.d_bias_ih_l0, L.d_bias_hh_l0])
        let y = try Self.expectMatches(LSTM(inputSize: 3, hiddenSize: 4, returnsSequences: returnsSequences), reference, "LSTM")
        // h_n is the last step's output.
        let last = returnsSequences ? Array(y.scalars.enumerated().filter { ($0.offset % 20) >= 16 }.map(\.element)) : y.scalars
        expectClose(last, S.hn, "h_n")
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
        typealias S = GoldenGRU.Sequence
        typealias L = GoldenGRU.Last
        let parameters = [GoldenGRU.weight_ih_l0, GoldenGRU.weight_hh_l0, GoldenGRU.bias_ih_l0, GoldenGRU.bias_hh_l0]
        let reference = returnsSequences
            ? Reference(parameters: parameters, x: GoldenGRU.x, r: S.r, output: S.output,
                        gradients: [S.dx, S.d_weight_ih_l0, S.d_weight_hh_l0, S.d_bias_ih_l0, S.d_bias_hh_l0])
            : Reference(parameters: parameters, x: GoldenGRU.x, r: L.r, output: L.output,
                        gradients: [L.dx, L.d_weight_ih_l0, L.d_weight_hh_l0, L.d_bias_ih_l0, L.d_bias_hh_l0])
        try Self.expectMatches(GRU(inputSize: 3, hiddenSize: 4, returnsSequences: returnsSequences), reference, "GRU")
        #expect(gradientCheck(GRU(inputSize: 3, hiddenSize: 5, returnsSequences: returnsSequences, seed: 2),
                              input: randomMatrix(4, 12, seed: 3)).passes(tolerance: 2e-2))
    }

    @Test(arguments: [RNN.Nonlinearity.tanh, .relu])
    func theRNNMatchesPyTorch(_ nonlinearity: RNN.Nonlinearity) throws {
        typealias T = GoldenRNN.Tanh
        typealias R = GoldenRNN.Relu
        let reference = nonlinearity == .tanh
            ? Reference(parameters: [T.weight_ih_l0, T.weight_hh_l0, T.bias_ih_l0, T.bias_hh_l0], x: T.x, r: T.r, output: T.output,
                        gradients: [T.dx, T.d_weight_ih_l0, T.d_weight_hh_l0, T.d_bias_ih_l0, T.d_bias_hh_l0])
            : Reference(parameters: [R.weight_ih_l0, R.weight_hh_l0, R.bias_ih_l0, R.bias_hh_l0], x: R.x, r: R.r, output: R.output,
                        gradients: [R.dx, R.d_weight_ih_l0, R.d_weight_hh_l0, R.d_bias_ih_l0, R.d_bias_hh_l0])
        try Self.expectMatches(RNN(inputSize: 3, hiddenSize: 4, nonlinearity: nonlinearity), reference, "RNN \(nonlinearity)")
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
        bp_lstm_step(&gates, [Float](repeating: 0, count: 4 * h), previous, &c, &t, &hidden, 1, h)
        var worst = 0.0
        for j in 0..<h {
            let exact = Foundation.tanh(Double(inputs[j]))
            worst = max(worst, abs(Double(c[j]) - exact) / max(abs(exact), 1e-30))
        }
        #expect(worst <= 5e-7, "largest relative error \(worst)")
        var far = [Float](repeating: 0, count: 4 * h)  // (the kernel activated `gates` in place)
        for j in 0..<h { (far[j], far[h + j], far[2 * h + j], far[3 * h + j]) = (60, -60, j % 2 == 0 ? 60 : -60, 60) }
        bp_lstm_step(&far, [Float](repeating: 0, count: 4 * h), previous, &c, &t, &hidden, 1, h)
        #expect(c.enumerated().allSatisfy { $0.element == ($0.offset % 2 == 0 ? 1 : -1) })
    }
}
