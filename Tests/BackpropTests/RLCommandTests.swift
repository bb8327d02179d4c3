@_spi(Internals) @testable import Backprop
import BackpropTestSupport
import Foundation
import Testing

/// `backprop rl train` and `rl play` as a user runs them, and their bad inputs.
@Suite("The backprop rl command")
struct RLCommandTests {
    @Test func trainWritesJSONPerEpisodeSavesAndPlays() throws {
        let folder = TemporaryFolder()
        let model = "\(folder.path)/policy.safetensors"
        let result = try runBackprop(["rl", "train", "--episodes", "30", "--hidden", "16", "--seed", "3", "--json", "--output", model])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        #expect(lines.count == 31)
        let first = lines[0]
        #expect(Set(first.keys) == ["episode", "return", "running_return", "steps", "environment_steps", "seconds", "environment_steps_per_second"])
        #expect(lines.allSatisfy { ($0["environment_steps_per_second"] as? Double ?? 0) > 0 }, "every line, the summary too")
        let running = 0.05 * (first["return"] as! Double) + 0.95 * 10
        #expect(abs((first["running_return"] as! Double) - running) < 1e-9)
        #expect(lines.last!["stopped"] as? String == "episodes" && lines.last!["episodes"] as? Int == 30)
        // The policy is a torch.nn.Sequential(Linear, Dropout, ReLU, Linear) state dict.
        let file = try SafetensorsFile(contentsOf: model)
        #expect(Set(file.tensors.keys) == ["0.weight", "0.bias", "3.weight", "3.bias"])
        #expect(file.tensors["0.weight"]?.shape == [16, 4] && file.tensors["3.weight"]?.shape == [2, 16])
        let play = try runBackprop(["rl", "play", "--model", model, "--episodes", "5"])
        #expect(play.status == 0 && play.stdout.hasPrefix("5 episodes (greedy actions): mean return "), "\(play.stdout) \(play.stderr)")
        let render = try runBackprop(["rl", "play", "--model", model, "--episodes", "1", "--render", "--sample"])
        #expect(render.status == 0 && render.stdout.contains("episode 1  step   1") && render.stdout.contains("o█████o"))
    }

    @Test func actorCriticTrains() throws {
        let result = try runBackprop(["rl", "train", "--algorithm", "actor-critic", "--episodes", "20", "--hidden", "16", "--quiet"])
        #expect(result.status == 0 && result.stdout.isEmpty && result.stderr.isEmpty, "\(result.stderr)")
    }

    @Test(arguments: [
        (["rl", "train", "--env", "mountaincar", "--episodes", "1"], "unknown environment 'mountaincar'"),
        (["rl", "play", "--model", "/nonexistent/policy.safetensors"], "/nonexistent/policy.safetensors: no such file"),
        (["rl", "train", "--episodes", "1", "--output", "/nonexistent/folder/p.safetensors"], "the folder does not exist"),
        (["rl", "train", "--episodes", "1", "--output", "/dev/null"], "exists and is not a regular file"),
    ])
    func badInputIsOneLineAndStatusOne(_ arguments: [String], _ expected: String) throws {
        let result = try runBackprop(arguments)
        #expect(result.status == 1, "\(arguments): status \(result.status)")
        #expect(result.stderr.hasPrefix("backprop: error: ") && result.stderr.contains(expected), "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
    }

    @Test func aModelThatDoesNotFitTheEnvironmentIsAnError() throws {
        let folder = TemporaryFolder()
        let model = "\(folder.path)/mlp.safetensors"
        try Network(sizes: [784, 10], activation: .relu, initializer: .heNormal, seed: 1).save(to: model)
        let result = try runBackprop(["rl", "play", "--model", model])
        #expect(result.status == 1 && result.stderr.contains("maps 784 inputs to 10 outputs; cartpole has 4 observations and 2 actions"),
                "\(result.stderr)")
    }

    @Test(arguments: [["--gamma", "1.5"], ["--learning-rate", "0"], ["--dropout", "1"], ["--hidden", "0"], ["--episodes", "0"],
                      ["--optimizer", "rmsprop"]])
    func badFlagsAreUsageErrors(_ flags: [String]) throws {
        let result = try runBackprop(["rl", "train"] + flags)
        #expect(result.status == 64, "\(flags): \(result.status) \(result.stderr)")
    }
}

/// `backprop train --model lstm|gru`: images read row by row, saved with torch_rnn_rows.py's names.
@Suite("The backprop command: recurrent models")
struct RecurrentCommandTests {
    @Test(arguments: ["rnn", "lstm", "gru"])
    func trainsSavesWithPyTorchNamesAndEvaluates(_ cell: String) throws {
        let folder = TemporaryFolder()
        quadrantFolder(folder, count: 64, seed: 1)
        let model = "\(folder.path)/\(cell).safetensors"
        let result = try runBackprop(["train", "--data", folder.path, "--layers", "16-4", "--model", cell, "--hidden", "6",
                                      "--optimizer", "adam", "--learning-rate", "0.01", "--epochs", "3", "--output", model, "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let file = try SafetensorsFile(contentsOf: model)
        let gates = cell == "lstm" ? 24 : cell == "gru" ? 18 : 6
        #expect(file.tensors["rnn.weight_ih_l0"]?.shape == [gates, 4] && file.tensors["rnn.weight_hh_l0"]?.shape == [gates, 6])
        #expect(Set(file.tensors.keys) == ["rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0", "rnn.bias_hh_l0", "head.weight", "head.bias"])
        let evaluate = try runBackprop(["evaluate", "--model", model, "--data", folder.path, "--json"])
        #expect(evaluate.status == 0, "\(evaluate.stderr)")
        let refused = try runBackprop(["train", "--data", folder.path, "--model", cell, "--dropout", "0.5", "--epochs", "1"])
        #expect(refused.status == 64 && refused.stderr.contains("--dropout with --model \(cell) is dropout between stacked layers"))
    }

    /// `--num-layers 2 --bidirectional --dropout`: PyTorch's names for every layer and direction, a head over both
    /// directions, evaluate works; resuming with another shape is refused; the flags are refused for other models.
    @Test func stackedBidirectionalModelsSaveEveryLayerAndDirection() throws {
        let folder = TemporaryFolder()
        quadrantFolder(folder, count: 64, seed: 2)
        let model = "\(folder.path)/lstm2.safetensors", checkpoint = "\(folder.path)/lstm2.ckpt"
        let result = try runBackprop(["train", "--data", folder.path, "--layers", "16-4", "--model", "lstm", "--hidden", "5",
                                      "--num-layers", "2", "--bidirectional", "--dropout", "0.2", "--optimizer", "adam",
                                      "--learning-rate", "0.01", "--epochs", "2", "--output", model, "--checkpoint", checkpoint,
                                      "--checkpoint-every", "1"])
        #expect(result.status == 0, "\(result.stderr)")
        let file = try SafetensorsFile(contentsOf: model)
        var expected: Set<String> = ["head.weight", "head.bias"]
        for k in 0..<2 {
            for suffix in ["", "_reverse"] {
                for tensor in ["weight_ih", "weight_hh", "bias_ih", "bias_hh"] { expected.insert("rnn.\(tensor)_l\(k)\(suffix)") }
            }
        }
        #expect(Set(file.tensors.keys) == expected)
        #expect(file.tensors["rnn.weight_ih_l1_reverse"]?.shape == [20, 10] && file.tensors["head.weight"]?.shape == [4, 10])
        let evaluate = try runBackprop(["evaluate", "--model", model, "--data", folder.path])
        #expect(evaluate.status == 0, "\(evaluate.stderr)")
        let resumed = try runBackprop(["train", "--data", folder.path, "--layers", "16-4", "--model", "lstm", "--hidden", "5",
                                       "--num-layers", "3", "--bidirectional", "--dropout", "0.2", "--optimizer", "adam",
                                       "--epochs", "3", "--resume", checkpoint, "--output", model])
        #expect(resumed.status == 1 && resumed.stderr.contains("--num-layers 3 conflicts"), "\(resumed.stderr) \(resumed.stdout)")
        let mlp = try runBackprop(["train", "--data", folder.path, "--num-layers", "2", "--epochs", "1"])
        #expect(mlp.status == 64 && mlp.stderr.contains("--hidden, --num-layers and --bidirectional are for --model rnn, lstm or gru"))
        let hidden = try runBackprop(["train", "--data", folder.path, "--hidden", "64", "--epochs", "1"])
        #expect(hidden.status == 64 && hidden.stderr.contains("give its layers with --layers"))
    }
}
