@_spi(Internals) @testable import Backprop
import BackpropTestSupport
import Foundation
import Testing

/// The GPT against PyTorch (Tests/Fixtures/golden_gpt.py, float64 from the same float32 parameters): a state dict
/// PyTorch saved loads; the logits, the loss and every gradient of one batch; three AdamW steps with warmup, cosine
/// decay, weight decay on the matrices and clipping that acts.
@Suite("GPT: PyTorch golden values")
struct GPTGoldenTests {
    struct Golden {
        let model: GPTModel, values: SafetensorsFile, corpus: [UInt8], starts: [[Int]], batch: Int
    }

    static func golden(_ name: String) throws -> Golden {
        let model = try GPTModel.load(from: "\(fixtures)/gpt-golden-\(name)-initial.safetensors")
        let values = try SafetensorsFile(contentsOf: "\(fixtures)/gpt-golden-\(name).safetensors")
        let corpus = values.tensors["corpus"]!.values.map { UInt8($0) }
        let starts = values.tensors["starts"]!
        let batch = starts.shape[1]
        return Golden(model: model, values: values, corpus: corpus,
                      starts: (0..<starts.shape[0]).map { r in (0..<batch).map { Int(starts.values[r * batch + $0]) } }, batch: batch)
    }

    /// The network's parameter (or gradient) tensors by PyTorch name, in PyTorch's layout.
    static func tensors(_ network: Network, gradients: Bool) -> [String: [Float]] {
        var result: [String: [Float]] = [:]
        for entry in network.namedTensors where entry.isParameter {
            let storage = gradients ? network.gradients.storage : network.parameters.storage
            let view = Matrix(rows: entry.tensor.rows, columns: entry.tensor.columns, storage: storage, offset: entry.tensor.offset)
            result[entry.name] = (entry.transposed ? view.transposed() : view).scalars
        }
        return result
    }

    @Test(arguments: ["multihead", "head32"]) func logitsAndGradients(name: String) throws {
        let g = try Self.golden(name)
        let gpt = g.model.gpt, t = gpt.context, v = gpt.vocabularySize, m = g.batch * t
        let input = Matrix(rows: g.batch, columns: t), targets = Matrix(rows: m, columns: v)
        for (row, start) in g.starts[0].enumerated() {
            for step in 0..<t {
                input.pointer[row * t + step] = Float(g.corpus[start + step])
                targets.pointer[(row * t + step) * v + Int(g.corpus[start + step + 1])] = 1
            }
        }
        let logits = Matrix(rows: g.batch, columns: t * v), dLogits = Matrix(rows: m, columns: v)
        let scratch = Matrix(rows: 1, columns: gpt.scratchCount(rows: g.batch, inputSize: t, backward: true))
        let context = LayerContext(mode: .training, scratch: scratch)
        gpt.forward(output: logits, input: input, context: context)
        expectClose(logits.scalars, g.values.tensors["logits"]!.values.map(Double.init), relative: 1e-4, absolute: 1e-5, "logits")
        let loss = CrossEntropy().lossAndGradient(gradient: dLogits, output: logits.reshaped(rows: m, columns: v), targets: targets)
        #expect(abs(Double(loss) - Double(g.values.tensors["loss"]!.values[0])) < 1e-5)
        g.model.network.zeroGradients()
        gpt.backward(dInput: nil, dOutput: dLogits.reshaped(rows: g.batch, columns: t * v), input: input, output: logits, context: context)
        let gradients = Self.tensors(g.model.network, gradients: true)
        #expect(gradients.count == g.model.network.namedTensors.count)
        for (tensorName, actual) in gradients.sorted(by: { $0.key < $1.key }) {
            let expected = g.values.tensors["grad." + tensorName]!.values.map(Double.init)
            let scale = expected.map(abs).max()!
            expectClose(actual, expected, relative: 1e-3, absolute: 1e-4 * scale, "∂L/∂\(tensorName)")
        }
    }

    @Test(arguments: ["multihead", "head32"]) func adamWStepsWithScheduleAndClipping(name: String) throws {
        let g = try Self.golden(name)
        let trainer = GPTTrainer(model: g.model, learningRate: 1e-2, weightDecay: 0.1, batchSize: g.batch,
                                 schedule: WarmupCosineSchedule(base: 1e-2, minimum: 1e-3, warmup: 2, iterations: 5), clipNorm: 0.05)
        let expectedLosses = g.values.tensors["step_losses"]!.values
        for i in 0..<3 {
            let loss = try trainer.step(g.corpus[...], windowStarts: g.starts[i + 1])
            #expect(abs(loss - expectedLosses[i]) < 1e-4, "step \(i + 1): loss \(loss), PyTorch \(expectedLosses[i])")
        }
        for (tensorName, actual) in Self.tensors(g.model.network, gradients: false).sorted(by: { $0.key < $1.key }) {
            let expected = g.values.tensors["after." + tensorName]!.values.map(Double.init)
            expectClose(actual, expected, relative: 1e-3, absolute: 2e-5, "\(tensorName) after 3 steps")
        }
    }

    /// The schedule is torch_gpt.py's `rate` (values computed by hand from its formula).
    @Test func schedule() {
        let s = WarmupCosineSchedule(base: 1e-3, minimum: 1e-4, warmup: 100, iterations: 2000)
        #expect(abs(s.learningRate(iteration: 0) - 1e-3 / 101) < 1e-10)
        #expect(abs(s.learningRate(iteration: 99) - 1e-3 * 100 / 101) < 1e-9)
        #expect(abs(s.learningRate(iteration: 100) - 1e-3) < 1e-9)
        #expect(abs(s.learningRate(iteration: 1050) - 5.5e-4) < 1e-9)  // halfway: γ_min + (γ − γ_min)/2
        #expect(abs(s.learningRate(iteration: 2000) - 1e-4) < 1e-9)
    }
}
