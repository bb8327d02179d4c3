#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes `bytes` to `path` atomically: a temporary file in the same folder is written, `fsync`ed and renamed over
/// `path` (rename is atomic within a file system), then the folder is `fsync`ed so that the rename is durable.
/// On any failure the temporary file is removed and a previous file at `path` is left as it was.
public func writeAtomically(_ bytes: [UInt8], to path: String) throws(CheckpointError) {
    let slash = path.lastIndex(of: "/")
    let folder = slash.map { String(path[..<$0]) } ?? "."
    let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
    var generator = SystemRandomNumberGenerator()
    let temporary = "\(folder.isEmpty ? "" : folder + "/").\(name).tmp-\(getpid())-\(generator.next() % 1_000_000_000)"
    func failure(_ what: String) -> CheckpointError {
        .writeFailed(path: path, reason: "\(what): \(String(cString: strerror(errno)))")
    }
    let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    guard descriptor >= 0 else { throw failure("cannot create \(temporary)") }
    var written = 0
    let ok = bytes.withUnsafeBytes { buffer -> Bool in
        while written < buffer.count {
            let n = Glibc.write(descriptor, buffer.baseAddress! + written, buffer.count - written)
            if n < 0 { if errno == EINTR { continue }; return false }
            written += n
        }
        return fsync(descriptor) == 0
    }
    let error = ok ? nil : failure("writing \(temporary) failed after \(written) bytes")
    close(descriptor)
    if let error { unlink(temporary); throw error }
    guard rename(temporary, path) == 0 else {
        let error = failure("cannot rename \(temporary)")
        unlink(temporary)
        throw error
    }
    let folderDescriptor = open(folder.isEmpty ? "/" : folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    if folderDescriptor >= 0 { fsync(folderDescriptor); close(folderDescriptor) }
}
