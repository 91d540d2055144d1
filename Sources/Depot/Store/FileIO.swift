import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The POSIX calls a journal needs, retried on EINTR, their failures thrown as `JournalError`s
/// naming the file.
enum FileIO {
    /// `open(2)`; -1 and `errno` on failure.
    static func open(_ path: String, _ flags: Int32, _ mode: mode_t = 0) -> Int32 { systemOpen(path, flags, mode) }

    static func close(_ descriptor: Int32) { _ = systemClose(descriptor) }

    /// Writes all of `bytes` at `offset`.
    static func writeAll(_ bytes: Data, to descriptor: Int32, at offset: Int, path: String) throws {
        try bytes.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let written = pwrite(descriptor, raw.baseAddress! + done, raw.count - done, off_t(offset + done))
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else { throw JournalError.system("write", path: path, errno: written == 0 ? EIO : errno) }
                done += written
            }
        }
    }

    /// Reads exactly `count` bytes at `offset`.
    static func read(_ descriptor: Int32, at offset: Int, count: Int, path: String) throws -> Data {
        var data = Data(count: count)
        try data.withUnsafeMutableBytes { raw in
            var done = 0
            while done < count {
                let got = pread(descriptor, raw.baseAddress! + done, count - done, off_t(offset + done))
                if got < 0 && errno == EINTR { continue }
                guard got > 0 else {
                    if got == 0 { throw JournalError(.io, path: path, "the file ended at byte \(offset + done), expected \(offset + count)") }
                    throw JournalError.system("read", path: path)
                }
                done += got
            }
        }
        return data
    }

    /// The whole file.
    static func readAll(_ descriptor: Int32, path: String) throws -> Data {
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw JournalError.system("fstat", path: path) }
        let size = Int(status.st_size)
        return size == 0 ? Data() : try read(descriptor, at: 0, count: size, path: path)
    }

    /// Makes a new or renamed file's name durable: fsync of the folder holding it.
    static func syncFolder(of path: String) throws {
        let folder = (path as NSString).deletingLastPathComponent
        let descriptor = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw JournalError.system("open folder", path: folder) }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else { throw JournalError.system("fsync folder", path: folder) }
    }
}

// File-scope wrappers: inside `FileIO`, `open` and `close` name its own functions.
private func systemOpen(_ path: String, _ flags: Int32, _ mode: mode_t) -> Int32 { open(path, flags, mode) }
private func systemClose(_ descriptor: Int32) -> Int32 { close(descriptor) }
