@_spi(Internals) @testable import Backprop
import BackpropTestSupport
import Testing

/// A two-layer network on fixed inputs, against values PyTorch autograd computed once (Tests/Fixtures/golden.py,
/// which writes GoldenValues.swift). Every output, the loss and every gradient are compared at 1e-5 relative.
@Suite("Golden values from PyTorch")
struct GoldenTests {
    static let activations: [String: ActivationKind] = [
        "sigmoidCrossEntropy": .sigmoid, "reluBinaryCrossEntropy": .relu, "tanhMeanSquaredError": .tanh,
    ]

    static func lossAndTargets(_ name: String) -> (any Loss, Matrix) {
        switch name {
        case "sigmoidCrossEntropy": (CrossEntropy(), oneHot(Golden.labels, classCount: 3))
        case "reluBinaryCrossEntropy": (BinaryCrossEntropy(), oneHot(Golden.labels, classCount: 3))
        default: (MeanSquaredError(), Matrix(rows: 4, columns: 3, values: Golden.regressionTargets))
        }
    }

    static func network(_ activation: ActivationKind) -> Network {
        let network = Network(sizes: [5, 4, 3], activation: activation, initializer: .zeros, seed: 0)
        let first = network.layers[0] as! Dense, second = network.layers[2] as! Dense
        first.weight.assign(Matrix(rows: 5, columns: 4, values: Golden.w1))
        first.bias.assign(Matrix(rows: 1, columns: 4, values: Golden.b1))
        second.weight.assign(Matrix(rows: 4, columns: 3, values: Golden.w2))
        second.bias.assign(Matrix(rows: 1, columns: 3, values: Golden.b2))
        return network
    }

    /// Layer by layer through the public kernels, including `dX`.
    @Test(arguments: Golden.cases.map(\.name))
    func layerByLayer(_ name: String) {
        let golden = Golden.cases.first { $0.name == name }!
        let network = Self.network(Self.activations[name]!)
        let (loss, targets) = Self.lossAndTargets(name)
        let dense1 = network.layers[0] as! Dense, activation = network.layers[1], dense2 = network.layers[2] as! Dense
        let x = Matrix(rows: 4, columns: 5, values: Golden.x)

        let z1 = Matrix(rows: 4, columns: 4), a1 = Matrix(rows: 4, columns: 4), z2 = Matrix(rows: 4, columns: 3)
        dense1.forward(output: z1, input: x, context: LayerContext(mode: .training))
        activation.forward(output: a1, input: z1, context: LayerContext(mode: .training))
        dense2.forward(output: z2, input: a1, context: LayerContext(mode: .training))
        expectClose(z2.scalars, golden.output, "\(name) output")

        let dZ2 = Matrix(rows: 4, columns: 3), dA1 = Matrix(rows: 4, columns: 4)
        let dZ1 = Matrix(rows: 4, columns: 4), dX = Matrix(rows: 4, columns: 5)
        let value = loss.lossAndGradient(gradient: dZ2, output: z2, targets: targets)
        expectClose([value], [golden.loss], "\(name) loss")
        network.zeroGradients()
        dense2.backward(dInput: dA1, dOutput: dZ2, input: a1, output: z2, context: LayerContext(mode: .training))
        activation.backward(dInput: dZ1, dOutput: dA1, input: z1, output: a1, context: LayerContext(mode: .training))
        dense1.backward(dInput: dX, dOutput: dZ1, input: x, output: z1, context: LayerContext(mode: .training))
        expectClose(dense1.weightGradient.scalars, golden.dW1, "\(name) dW1")
        expectClose(dense1.biasGradient.scalars, golden.db1, "\(name) db1")
        expectClose(dense2.weightGradient.scalars, golden.dW2, "\(name) dW2")
        expectClose(dense2.biasGradient.scalars, golden.db2, "\(name) db2")
        expectClose(dX.scalars, golden.dX, "\(name) dX")
    }

    /// Through `Network`'s flat buffers, and one SGD step: `θ ← θ − α·g` exactly.
    @Test(arguments: Golden.cases.map(\.name))
    func throughNetworkBuffers(_ name: String) {
        let golden = Golden.cases.first { $0.name == name }!
        let network = Self.network(Self.activations[name]!)
        let (loss, targets) = Self.lossAndTargets(name)
        let x = Matrix(rows: 4, columns: 5, values: Golden.x)
        let workspace = Workspace(for: network, capacity: 8)
        network.zeroGradients()
        let output = network.forward(x, workspace: workspace)
        expectClose(output.scalars, golden.output, "\(name) output")
        let value = loss.lossAndGradient(gradient: workspace.outputGradient(rows: 4), output: output, targets: targets)
        expectClose([value], [golden.loss], "\(name) loss")
        network.backward(x, workspace: workspace)
        // The flat gradient buffer is W1, b1, W2, b2 in order.
        expectClose(network.gradients.scalars, golden.dW1 + golden.db1 + golden.dW2 + golden.db2, "\(name) gradients")

        let before = network.parameters.scalars, gradients = network.gradients.scalars
        var sgd = SGD(learningRate: 0.5)
        sgd.step(network)
        #expect(network.parameters.scalars == zip(before, gradients).map { $0 - 0.5 * $1 })
    }
}
