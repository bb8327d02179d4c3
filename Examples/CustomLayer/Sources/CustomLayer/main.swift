// A layer of your own, trained, saved, and loaded again in a fresh process.
//
//   CustomLayer train MODEL   trains Scale → Dense on a small problem, saves MODEL and MODEL.predictions
//   CustomLayer check MODEL   a new process: registers Scale, loads MODEL, and checks that its predictions are
//                             bitwise those saved by `train` (exit 0), else exit 1
import Backprop
import Foundation

/// A learnable per-feature scale, `y = x ∘ s` (`s` is `1 × F`, starting at 1). Backward: `∂L/∂s += Σₙ dy ∘ x`,
/// `dx = dy ∘ s`. Saved under the type name "example-scale", its tensor named `weight` as PyTorch would.
struct Scale: SavableLayer {
    struct Settings: Codable, Sendable { var featureCount: Int }
    static let typeName = "example-scale"
    private(set) var scale: Matrix, scaleGradient: Matrix

    init(featureCount: Int) {
        scale = Matrix(rows: 1, columns: featureCount)
        scale.fill(1)
        scaleGradient = Matrix(rows: 1, columns: featureCount)
    }
    init(settings: Settings) throws {
        guard settings.featureCount > 0 else { throw InvalidLayerSettings("feature count \(settings.featureCount)") }
        self.init(featureCount: settings.featureCount)
    }
    var settings: Settings { Settings(featureCount: scale.columns) }

    func outputSize(forInputSize inputSize: Int) -> Int {
        precondition(inputSize == scale.columns, "Scale: takes \(scale.columns) features, was given \(inputSize)")
        return inputSize
    }
    /// What loading asks: a file whose layers do not fit together is then an error, not a stop.
    func outputSizeIfAccepted(forInputSize inputSize: Int) -> Int? { inputSize == scale.columns ? inputSize : nil }
    var parameters: [Matrix] { [scale] }
    var parameterGradients: [Matrix] { [scaleGradient] }
    var parameterNames: [TensorName] { [TensorName("weight", shape: [scale.columns])] }
    mutating func bind(parameters: [Matrix], gradients: [Matrix]) {
        parameters[0].assign(scale)
        (scale, scaleGradient) = (parameters[0], gradients[0])
    }
    func forward(output: Matrix, input: Matrix, context: LayerContext) {
        for i in 0..<input.rows { for j in 0..<input.columns { output[i, j] = input[i, j] * scale[0, j] } }
    }
    func backward(dInput: Matrix?, dOutput: Matrix, input: Matrix, output: Matrix, context: LayerContext) {
        for i in 0..<input.rows {
            for j in 0..<input.columns {
                scaleGradient[0, j] += dOutput[i, j] * input[i, j]
                if let dInput { dInput[i, j] = dOutput[i, j] * scale[0, j] }
            }
        }
    }
}

/// 256 points in 4 features; the class is whether feature 0 (tiny) outweighs feature 1 (huge).
func problem() -> (input: Matrix, targets: Matrix) {
    var generator = SeededGenerator(seed: 3)
    let input = Matrix(rows: 256, columns: 4)
    var labels: [Int] = []
    for i in 0..<256 {
        let a = Float(generator.nextUniform()) - 0.5, b = Float(generator.nextUniform()) - 0.5
        input[i, 0] = a * 0.01
        input[i, 1] = b * 100
        input[i, 2] = Float(generator.nextUniform())
        input[i, 3] = Float(generator.nextUniform())
        labels.append(a > b ? 1 : 0)
    }
    return (input, oneHot(labels, classCount: 2))
}

func text(_ m: Matrix) -> String { m.scalars.map { String($0.bitPattern) }.joined(separator: "\n") }

LayerRegistry.register(Scale.self)
let arguments = CommandLine.arguments
guard arguments.count == 3, ["train", "check"].contains(arguments[1]) else {
    FileHandle.standardError.write(Data("usage: CustomLayer train|check MODEL\n".utf8))
    exit(64)
}
let path = arguments[2], (input, targets) = problem()
do {
    if arguments[1] == "train" {
        let network = Network(inputSize: 4, layers: [Scale(featureCount: 4), Dense(inputSize: 4, outputSize: 2)],
                              initializer: .xavierUniform, seed: 1)
        let trainer = Trainer(network: network, loss: CrossEntropy(), optimizer: Adam(learningRate: 0.05), batchSize: 256)
        var loss: Float = 0
        for _ in 0..<300 { loss = try trainer.trainStep(input: input, targets: targets) }
        let accuracy = (0..<256).filter { argmax(network(input), row: $0) == argmax(targets, row: $0) }.count
        print("trained: loss \(loss), accuracy \(accuracy)/256, scale \((network.layers[0] as! Scale).scale.scalars)")
        try network.save(to: path)
        try Data(text(network(input)).utf8).write(to: URL(fileURLWithPath: path + ".predictions"))
        print("saved \(path)")
    } else {
        let loaded = try Network.load(from: path)
        let expected = try String(contentsOfFile: path + ".predictions", encoding: .utf8)
        guard text(loaded(input)) == expected else { print("the loaded model predicts differently"); exit(1) }
        print("loaded \(path) in a fresh process: predictions bitwise equal to the trained model's")
    }
} catch {
    FileHandle.standardError.write(Data("CustomLayer: \(error)\n".utf8))
    exit(1)
}
