import ArgumentParser
import Backprop
import Foundation

@main
struct BackpropCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backprop",
        abstract: "Train and evaluate neural networks with explicit backpropagation on OpenBLAS.",
        subcommands: [Train.self, Evaluate.self, Predict.self, RL.self],
        defaultSubcommand: nil)
}

/// Prints `message` to standard error as `backprop: error: message` and exits with status 1.
func fail(_ message: String) -> ExitCode {
    printError("backprop: error: \(message)")
    return ExitCode(1)
}

/// `fail(_:)`, naming the MPI rank when there is more than one.
func fail(_ message: String, rank world: (any Communicator)?) -> ExitCode {
    guard let world, world.size > 1 else { return fail(message) }
    return fail("(rank \(world.rank) of \(world.size)) \(message)")
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
