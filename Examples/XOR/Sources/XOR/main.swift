// Trains a 2-8-2 tanh network on XOR with full-batch gradient descent, checks it with gradientCheck, saves it,
// loads it back, and prints its answers. Exits with status 1 if it did not learn XOR.
import Backprop
import Foundation

let inputs: [Float] = [0, 0, 0, 1, 1, 0, 1, 1]
let labels = [0, 1, 1, 0]
let data = Dataset(features: inputs, featureCount: 2, labels: labels, classCount: 2)

let network = Network(sizes: [2, 8, 2], activation: .tanh, initializer: .xavierUniform, seed: 1)
let check = gradientCheck(network, loss: CrossEntropy(), input: Matrix(rows: 4, columns: 2, values: inputs),
                          targets: oneHot(labels, classCount: 2))
print(check)

let trainer = Trainer(network: network, loss: CrossEntropy(), optimizer: SGD(learningRate: 0.5, momentum: 0.9),
                      batchSize: 0)
for epoch in 1...300 {
    let report = try trainer.trainEpoch(on: data)
    if epoch % 100 == 0 { print("epoch \(epoch): loss \(report.trainLoss)") }
}

let path = "/tmp/xor-example.safetensors"
try network.save(to: path, metadata: ["task": "xor"])
let loaded = try Network.load(from: path)
let probabilities = softmax(loaded(Matrix(rows: 4, columns: 2, values: inputs)))
var correct = 0
for (i, label) in labels.enumerated() {
    let predicted = argmax(probabilities, row: i)
    if predicted == label { correct += 1 }
    print("\(Int(inputs[2 * i])) xor \(Int(inputs[2 * i + 1])) = \(predicted)  (p = \(probabilities[i, predicted]))")
}
print("\(correct)/4 correct")
if correct != 4 || !check.passes() {
    print("the XOR example did not learn XOR")  // CI runs this example
    exit(1)
}
