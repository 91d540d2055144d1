import Foundation
#if canImport(Glibc)
import Glibc
#endif

extension UUID {
    /// A random (version 4) UUID from the C library's arc4random, which refills from the
    /// kernel in large steps: Foundation's `UUID()` on Linux opens and reads /dev/urandom for
    /// every id (about 5 µs), and producers give every message an id.
    static func random() -> UUID {
        random(count: 1)[0]
    }

    /// `count` random ids from one call for their bytes: glibc's arc4random asks the kernel
    /// (getrandom) on every call, 8% of a client's CPU when it drew batches of 100 one id at a time.
    static func random(count: Int) -> [UUID] {
        guard count > 0 else { return [] }
        var bytes = [UInt8](repeating: 0, count: 16 * count)
        bytes.withUnsafeMutableBytes { arc4random_buf($0.baseAddress!, $0.count) }
        return (0..<count).map { index in
            let b = bytes[(16 * index)..<(16 * index + 16)]
            let i = b.startIndex
            return UUID(uuid: (b[i], b[i + 1], b[i + 2], b[i + 3], b[i + 4], b[i + 5],
                               (b[i + 6] & 0x0F) | 0x40,  // version 4
                               b[i + 7],
                               (b[i + 8] & 0x3F) | 0x80,  // RFC 4122 variant
                               b[i + 9], b[i + 10], b[i + 11], b[i + 12], b[i + 13], b[i + 14], b[i + 15]))
        }
    }

    /// `ids` with every nil replaced by a random id, drawn together.
    static func filling(_ ids: [UUID?]) -> [UUID] {
        var fresh = random(count: ids.lazy.filter { $0 == nil }.count).makeIterator()
        return ids.map { $0 ?? fresh.next()! }
    }
}

extension Array where Element == OutgoingMessage {
    /// The messages with an id each: their own, or a new random one.
    func withIds() -> [OutgoingMessage] {
        zip(self, UUID.filling(map(\.id))).map { message, id in
            var message = message
            message.id = id
            return message
        }
    }
}
