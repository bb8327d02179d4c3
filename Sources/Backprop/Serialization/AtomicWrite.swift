#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CBackpropSignals

/// Makes SIGINT, SIGTERM, SIGHUP and SIGQUIT remove the temporary file of a ``writeAtomically(to:_:)`` in progress
/// before the process ends as the signal says (so Ctrl-C during a save leaves nothing behind). Call once, early, in
/// a program that saves models; `backprop` does.
@_spi(Internals) public func installTemporaryFileCleanup() {
    bp_install_temporary_file_cleanup()
}

/// Writes `bytes` to `path` atomically (see ``writeAtomically(to:_:)``).
@_spi(Internals) public func writeAtomically(_ bytes: [UInt8], to path: String) throws(CheckpointError) {
    try writeAtomically(to: path) { (file) throws(CheckpointError) in try file.write(bytes) }
}

/// A file being written by ``writeAtomically(to:_:)``.
@_spi(Internals) public struct AtomicFileWriter {
    let descriptor: Int32
    let temporaryPath: String
    let finalPath: String
    /// The bytes written so far.
    public private(set) var count = 0

    /// Appends `bytes`.
    public mutating func write(_ bytes: [UInt8]) throws(CheckpointError) {
        var failure: CheckpointError?
        bytes.withUnsafeBytes { buffer in
            do throws(CheckpointError) { try write(buffer) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// Appends the bytes of `buffer`.
    public mutating func write(_ buffer: UnsafeRawBufferPointer) throws(CheckpointError) {
        var done = 0
        while done < buffer.count {
            let n = Glibc.write(descriptor, buffer.baseAddress! + done, buffer.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw .writeFailed(path: finalPath, reason: "writing \(temporaryPath) failed after \(count + done) bytes: \(String(cString: strerror(errno)))")
            }
            done += n
        }
        count += done
    }
}

/// Writes a file atomically: `body` writes a temporary file in the same folder as `path`, which is then flushed
/// to disk (`fsync`) and renamed over `path` (atomic within a file system), and the folder is flushed so that the
/// rename is durable. A crash or kill at any moment leaves either the previous file or the complete new one at
/// `path`, never a mixture; on an error the temporary file is removed and the previous file is left as it was.
/// (A killed process cannot remove its temporary file: it is named `.NAME.tmp-PID-N` beside `path`.) Only a
/// regular file is ever replaced: a device, a FIFO or a folder at `path` is an error, and so is an empty path.
@_spi(Internals) public func writeAtomically(
    to path: String, _ body: (inout AtomicFileWriter) throws(CheckpointError) -> Void
) throws(CheckpointError) {
    guard !path.isEmpty, !path.hasSuffix("/") else { throw .writeFailed(path: path, reason: "the path names no file") }
    var existing = stat()
    if stat(path, &existing) == 0 && (existing.st_mode & S_IFMT) != S_IFREG {
        throw .writeFailed(path: path, reason: "it exists and is not a regular file (only regular files are replaced)")
    }
    let slash = path.lastIndex(of: "/")
    let folder = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
    let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
    var generator = SystemRandomNumberGenerator()
    // Beside the file, so that the rename stays within one file system (a file at the root: in the root).
    let temporary = "\(folder == "/" ? "" : folder)/.\(name).tmp-\(getpid())-\(generator.next() % 1_000_000_000)"
    func failure(_ what: String) -> CheckpointError {
        .writeFailed(path: path, reason: "\(what): \(String(cString: strerror(errno)))")
    }
    bp_temporary_file_begin(temporary)  // a signal from here on removes it (see installTemporaryFileCleanup())
    defer { bp_temporary_file_end() }
    let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    guard descriptor >= 0 else { throw failure("cannot create \(temporary)") }
    var writer = AtomicFileWriter(descriptor: descriptor, temporaryPath: temporary, finalPath: path)
    do throws(CheckpointError) {
        try body(&writer)
        guard fsync(descriptor) == 0 else { throw failure("cannot flush \(temporary)") }
    } catch {
        close(descriptor)
        unlink(temporary)
        throw error
    }
    close(descriptor)
    guard rename(temporary, path) == 0 else {
        let error = failure("cannot rename \(temporary)")
        unlink(temporary)
        throw error
    }
    let folderDescriptor = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    if folderDescriptor >= 0 { fsync(folderDescriptor); close(folderDescriptor) }
}
