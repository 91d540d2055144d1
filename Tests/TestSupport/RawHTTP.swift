import DepotHTTP
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Sends raw bytes over a fresh connection and returns everything the server sent back until it
/// closed. Blocking socket calls run on a dispatch thread, off the cooperative pool the server's
/// handlers need.
public func rawExchange(port: Int, _ bytes: [UInt8], halfClose: Bool = false) async throws -> String {
    try await withCheckedThrowingContinuation { continuation in
        Thread {
            continuation.resume(with: Result { try blockingRawExchange(port: port, bytes, halfClose: halfClose) })
        }.start()
    }
}

private func blockingRawExchange(port: Int, _ bytes: [UInt8], halfClose: Bool) throws -> String {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
    var timeout = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var offset = 0
    while offset < bytes.count {
        let sent = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
        if sent <= 0 { break }  // the server may refuse before reading everything
        offset += sent
    }
    if halfClose { shutdown(fd, Int32(SHUT_WR)) }
    var received: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, 65536, 0) }
        if count <= 0 { break }
        received += buffer[0..<count]
    }
    return String(decoding: received, as: UTF8.self)
}

/// A port nothing listens on (bound, read, then released).
public func freePort() throws -> Int {
    let echo = EchoBackend()
    let port = try echo.start()
    echo.stop()
    return port
}
