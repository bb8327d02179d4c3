import ArgumentParser
import Backprop
import Foundation

@main
struct BackpropCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backprop",
        abstract: "Train and evaluate neural networks with explicit backpropagation on OpenBLAS.",
        subcommands: [Train.self, Evaluate.self, Predict.self],
        defaultSubcommand: nil)
}

/// Prints `message` to standard error as `backprop: error: message` and exits with status 1.
func fail(_ message: String) -> ExitCode {
    printError("backprop: error: \(message)")
    return ExitCode(1)
}

func printError(_ message: String) {
    var standardError = StandardError()
    print(message, to: &standardError)
}

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        FileHandle.standardError.write(Data(string.utf8))
    }
}

extension ActivationKind: ExpressibleByArgument {}
