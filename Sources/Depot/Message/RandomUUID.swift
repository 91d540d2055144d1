import Foundation
#if canImport(Glibc)
import Glibc
#endif

extension UUID {
    /// A random (version 4) UUID from the C library's arc4random, which refills from the
    /// kernel in large steps: Foundation's `UUID()` on Linux opens and reads /dev/urandom for
    /// every id (about 5 µs), and producers give every message an id.
    static func random() -> UUID {
        var bytes = (UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0),
                     UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0))
        withUnsafeMutableBytes(of: &bytes) { arc4random_buf($0.baseAddress!, 16) }
        bytes.6 = (bytes.6 & 0x0F) | 0x40  // version 4
        bytes.8 = (bytes.8 & 0x3F) | 0x80  // RFC 4122 variant
        return UUID(uuid: bytes)
    }
}
