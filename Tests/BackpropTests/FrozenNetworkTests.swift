@_spi(Internals) @testable import Backprop
import BackpropTestSupport
import Foundation
import Testing

@Suite("Frozen networks")
struct FrozenNetworkTests {
    /// `sizes[0]`-…-`sizes.last`, ReLU between the dense layers, parameters drawn from `seed`.
    static func mlp(_ sizes: [Int], seed: UInt64 = 7) -> Network {
        Network(sizes: sizes, activation: .relu, initializer: .heNormal, seed: seed)
    }

    /// The MLP's output computed independently: `Z = X·W + b` by the triple-loop reference product, ReLU between.
    static func referenceOutput(_ network: Network, _ input: Matrix) -> [Double] {
        var current = input
        for layer in network.layers {
            guard let dense = layer as? Dense else {
                current = Matrix(rows: current.rows, columns: current.columns,
                                 values: current.scalars.map { max($0, 0) })
                continue
            }
            let z = Matrix(rows: current.rows, columns: dense.outputSize)
            referenceGEMM(z, current, dense.weight)
            for r in 0..<z.rows { for c in 0..<z.columns { z[r, c] += dense.bias[0, c] } }
            current = z
        }
        return current.scalars.map(Double.init)
    }

    // Widths that are not multiples of 16 or 32, a sum longer than the AVX2 kernel's block of 256, and batches on
    // each side of the four rows from which the panels are used, through each tile height (6, 4, 2, 1).
    @Test("the frozen forward pass is the reference's at every batch size", arguments: [1, 2, 3, 4, 5, 7, 13, 32, 65])
    func matchesReference(rows: Int) {
        let network = Self.mlp([300, 50, 37, 13])
        let frozen = network.frozen()
        let input = randomMatrix(rows, 300, seed: 3, in: 0...1)
        let workspace = Workspace(for: frozen, capacity: 65)
        let expected = Self.referenceOutput(network, input)
        expectClose(frozen.forward(input, workspace: workspace).scalars, expected, relative: 1e-5, absolute: 1e-5,
                    "frozen, \(rows) rows")
        expectClose(frozen(input).scalars, expected, relative: 1e-5, absolute: 1e-5, "frozen(x), \(rows) rows")
        expectClose(network(input).scalars, expected, relative: 1e-5, absolute: 1e-5, "network(x), \(rows) rows")
        #expect(frozen.packedLayerCount == (PackedOperand.panelKernelAvailable ? 3 : 0))
        #expect(frozen.inputSize == 300 && frozen.outputSize == 13 && frozen.layerOutputSizes == network.layerOutputSizes)
    }

    @Test("a packed dense layer without panels (sgemm on its copy) gives the same output")
    func withoutPanels() {
        let dense = Dense(inputSize: 70, outputSize: 40, initializer: .heNormal, seed: 4)
        let input = randomMatrix(9, 70, seed: 5)
        let withPanels = PackedDense(dense), without = PackedDense(dense, panels: false)
        #expect(without.panels == nil)
        let a = Matrix(rows: 9, columns: 40), b = Matrix(rows: 9, columns: 40), expected = Matrix(rows: 9, columns: 40)
        withPanels.forward(output: a, input: input, context: LayerContext(mode: .evaluation))
        without.forward(output: b, input: input, context: LayerContext(mode: .evaluation))
        dense.forward(output: expected, input: input, context: LayerContext(mode: .evaluation))
        expectClose(a.scalars, expected.scalars.map(Double.init), relative: 1e-5, absolute: 1e-6, "panels")
        expectClose(b.scalars, expected.scalars.map(Double.init), relative: 1e-5, absolute: 1e-6, "no panels")
    }

    @Test("two threads split the columns and give the same bits as one")
    func threadsAgree() {
        let network = Self.mlp([784, 512, 100, 10])
        let frozen = network.frozen()
        let input = randomMatrix(32, 784, seed: 9, in: 0...1)
        let one = Parallel.withThreadCount(1) { frozen(input).scalars }
        let two = Parallel.withThreadCount(2) { frozen(input).scalars }
        #expect(one == two)
        expectClose(one, Self.referenceOutput(network, input), relative: 1e-5, absolute: 1e-5, "784-512-100-10")
    }

    @Test("a frozen network is a snapshot: training the original, or its batch statistics, changes nothing")
    func snapshot() throws {
        var generator = SeededGenerator(seed: 1)
        let network = Network(inputSize: 20, layers: [
            Dense(inputSize: 20, outputSize: 16, initializer: .heNormal, generator: &generator), BatchNorm(featureCount: 16),
            ReLU(), Dense(inputSize: 16, outputSize: 3, initializer: .heNormal, generator: &generator),
        ])
        let input = randomMatrix(8, 20, seed: 2)
        let frozen = network.frozen()
        let before = frozen(input).scalars
        expectClose(before, network(input).scalars.map(Double.init), relative: 1e-5, absolute: 1e-6, "before training")
        let trainer = Trainer(network: network, loss: CrossEntropy(), optimizer: SGD(learningRate: 0.5), batchSize: 8, seed: 0)
        let targets = Matrix(rows: 8, columns: 3, values: (0..<24).map { $0 % 3 == $0 / 3 % 3 ? 1 : 0 })
        for _ in 0..<3 { _ = try trainer.trainStep(input: input, targets: targets) }
        #expect(network(input).scalars != before)  // the original moved, running statistics included
        #expect(frozen(input).scalars == before)
        #expect(network.frozen()(input).scalars != before)
    }
}
