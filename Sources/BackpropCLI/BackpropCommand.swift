import ArgumentParser
import CBackpropSignals
@_spi(Internals) import Backprop
import Foundation

@main
struct BackpropCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backprop",
        abstract: "Train and evaluate neural networks with explicit backpropagation on OpenBLAS.",
        subcommands: [Train.self, Evaluate.self, Predict.self, Benchmark.self, RL.self, Text.self],
        defaultSubcommand: nil)

    /// Ctrl-C or SIGTERM during a save removes its temporary file; then parses the command line and runs. A usage
    /// error is one line on standard error and exit status 64 (ArgumentParser would add the usage text after it).
    static func main() {
        installTemporaryFileCleanup()
        // A closed pipe on standard output is a failed write (reported by checkStandardOutput), not a silent death.
        signal(SIGPIPE, SIG_IGN)
        do {
            var command = try parseAsRoot(nil)
            try command.run()
            checkStandardOutput()
        } catch {
            let code = exitCode(for: error)
            if code == .validationFailure {
                printError("backprop: error: \(oneLine(message(for: error))) (see 'backprop\(subcommandPath()) --help')")
                Foundation.exit(code.rawValue)
            }
            if code == .success {  // --help, help: the text goes to standard output, which may fail too
                let text = fullMessage(for: error)
                if !text.isEmpty { print(text) }
                checkStandardOutput()
                Foundation.exit(0)
            }
            checkStandardOutput()
            exit(withError: error)
        }
    }

    /// Output that could not be written (a full disk, a closed pipe) is an error, not a silent exit 0.
    static func checkStandardOutput() {
        let code = bp_flush_standard_output()
        if code != 0 {
            printError("backprop: error: cannot write to standard output: \(String(cString: strerror(code)))")
            Foundation.exit(1)
        }
    }
}

/// ArgumentParser's `message` on one line: it lists an option's values one per line ("- sgd"), which become a list
/// after the sentence that introduces them.
func oneLine(_ message: String) -> String {
    var text = "", items: [String] = []
    for line in message.split(separator: "\n").map({ $0.trimmingCharacters(in: .whitespaces) }) where !line.isEmpty {
        if line.hasPrefix("- ") { items.append(String(line.dropFirst(2))); continue }
        if !items.isEmpty { text += " " + items.joined(separator: ", "); items = [] }
        text += (text.isEmpty ? "" : " ") + line
    }
    if !items.isEmpty { text += " " + items.joined(separator: ", ") }
    return text
}

/// The subcommands named at the start of the command line (` rl train`), for a help hint.
func subcommandPath() -> String {
    let arguments = Array(CommandLine.arguments.dropFirst())
    guard let first = arguments.first, ["train", "evaluate", "predict", "benchmark", "rl", "text"].contains(first) else { return "" }
    if first == "rl", arguments.count > 1, ["train", "play"].contains(arguments[1]) { return " rl \(arguments[1])" }
    if first == "text", arguments.count > 1, ["train", "sample"].contains(arguments[1]) { return " text \(arguments[1])" }
    return " \(first)"
}

/// The bytes given for `flag` exactly as the shell passed them: its last `flag VALUE` or `flag=VALUE` (the one
/// ArgumentParser keeps), before any `--`. `CommandLine.arguments` replaces bytes that are not UTF-8 with U+FFFD, so
/// an option whose value may be any bytes (`text sample --prime`) reads them here, from `CommandLine.unsafeArgv`.
func rawArgument(_ flag: String) -> [UInt8]? {
    let name = Array(flag.utf8), prefix = name + [UInt8(ascii: "=")]
    func argument(_ i: Int) -> [UInt8] {
        guard let pointer = CommandLine.unsafeArgv[i] else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: strlen(pointer)))
    }
    var value: [UInt8]?
    var i = 1
    while i < Int(CommandLine.argc) {
        let token = argument(i)
        if token == [UInt8(ascii: "-"), UInt8(ascii: "-")] { break }
        if token == name && i + 1 < Int(CommandLine.argc) {
            value = argument(i + 1)
            i += 2
            continue
        }
        if token.starts(with: prefix) { value = Array(token.dropFirst(prefix.count)) }
        i += 1
    }
    return value
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

/// Checks, before any work, that a file can be written at `path` (given by `flag`): a regular file that can be
/// written, or a new file in a folder that exists and can be written. Anything else — an empty path, a folder, a
/// device, a FIFO — is refused, so that nothing but a regular file is ever replaced.
func checkOutputLocation(_ path: String, flag: String) throws {
    guard !path.isEmpty else { throw fail("\(flag) is empty; give a file name") }
    guard !path.hasSuffix("/") else { throw fail("\(flag) \(path) ends with '/': give a file name, not a folder") }
    let name = (path as NSString).lastPathComponent
    guard name.utf8.count <= Int(NAME_MAX) - 16, path.utf8.count < Int(PATH_MAX) - 16 else {
        throw fail("\(flag): the file name is too long (\(name.utf8.count) bytes; at most \(Int(NAME_MAX) - 16))")
    }
    var link = stat()
    if lstat(path, &link) == 0, (link.st_mode & S_IFMT) == S_IFLNK {
        let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) ?? "?"
        throw fail("\(flag) \(path) is a symbolic link (to \(target)); give the file itself, so that the link is not replaced")
    }
    var info = stat()
    if stat(path, &info) == 0 {
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw fail("\(flag) \(path) exists and is not a regular file; only regular files are replaced") }
        guard access(path, W_OK) == 0 else { throw fail("\(flag) \(path) cannot be written (permission denied)") }
    } else {
        let folder = (path as NSString).deletingLastPathComponent
        var folderInfo = stat()
        guard stat(folder.isEmpty ? "." : folder, &folderInfo) == 0, (folderInfo.st_mode & S_IFMT) == S_IFDIR else {
            throw fail("\(flag) \(path): the folder does not exist")
        }
        guard access(folder.isEmpty ? "." : folder, W_OK) == 0 else { throw fail("\(flag) \(path): the folder cannot be written") }
    }
    // The file is written beside its target and renamed over it (writeAtomically), so the folder must take a new file.
    // access() cannot tell (root passes it where no file can be made: /proc, a read-only mount): make one and remove it.
    let folder = (path as NSString).deletingLastPathComponent
    var generator = SystemRandomNumberGenerator()
    let probe = "\(folder.isEmpty ? "." : folder == "/" ? "" : folder)/.\(name).probe-\(getpid())-\(generator.next() % 1_000_000_000)"
    let descriptor = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
    guard descriptor >= 0 else {
        throw fail("\(flag) \(path): a file cannot be made in its folder (\(String(cString: strerror(errno))))")
    }
    close(descriptor)
    unlink(probe)
}

/// Refuses any output (`(path, flag)`) that names one of the inputs (`(path, what)`): the run would overwrite its own
/// data, corpus or checkpoint.
func checkOutputsSpareInputs(_ outputs: [(path: String, flag: String)], inputs: [(path: String, what: String)]) throws {
    for output in outputs {
        for input in inputs where sameFile(output.path, input.path) {
            throw fail("\(output.flag) \(output.path) is \(input.what); it would be overwritten — give another file")
        }
    }
}

/// Whether `a` and `b` name the same file (the same path, or the same existing file through another path).
func sameFile(_ a: String, _ b: String) -> Bool {
    if (a as NSString).standardizingPath == (b as NSString).standardizingPath { return true }
    var x = stat(), y = stat()
    return stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino
}

/// The threads to use: `requested`, but no more than the CPUs this process may run on (more only wait for each other:
/// a 1 000-thread team ran 20× slower); says so once on standard error unless `quiet`.
func threadCount(_ requested: Int?, default fallback: Int, quiet: Bool) -> Int {
    let available = max(1, Parallel.availableProcessors)
    guard let requested else { return min(fallback, available) }
    if requested > available {
        if !quiet { printError("backprop: note: using \(available) thread(s): more than the \(available) CPU(s) available cannot help") }
        return available
    }
    return requested
}
