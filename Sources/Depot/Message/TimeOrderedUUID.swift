import Foundation
#if canImport(Glibc)
import Glibc
#endif

extension UUID {
    /// A time-ordered (version 7, RFC 9562) id: 48 bits of Unix milliseconds, then random bits.
    ///
    /// Why not random (version 4): every message's id goes into the primary key, and random ids
    /// land on random leaf pages of it; ids that grow with time land on the few newest pages, and
    /// an ack's delete of one batch finds its ids side by side (figures in commit e4ea72d).
    /// The random bits come from the C library's arc4random, which refills from the kernel in
    /// large steps: Foundation's `UUID()` on Linux opens and reads /dev/urandom for every id.
    static func timeOrdered(at date: Date = Date()) -> UUID {
        timeOrdered(count: 1, at: date)[0]
    }

    /// `count` ids from one call for their random bytes (glibc's arc4random asks the kernel on
    /// every call). Ids of one
    /// call share their millisecond and ascend in the order given: the 12 bits after the version
    /// count up from a random start.
    static func timeOrdered(count: Int, at date: Date = Date()) -> [UUID] {
        guard count > 0 else { return [] }
        let milliseconds = UInt64(max(0, date.timeIntervalSince1970 * 1000))
        var bytes = [UInt8](repeating: 0, count: 8 * count + 2)
        bytes.withUnsafeMutableBytes { arc4random_buf($0.baseAddress!, $0.count) }
        // A start low enough that `count` ids (at most 4,096 per millisecond) never wrap.
        let room = max(1, 4096 - min(count, 4096))
        let start = (Int(bytes[0]) << 8 | Int(bytes[1])) % room
        return (0..<count).map { index in
            let r = 2 + 8 * index
            let sequence = UInt16((start + index) & 0x0FFF)
            return UUID(uuid: (UInt8(truncatingIfNeeded: milliseconds >> 40), UInt8(truncatingIfNeeded: milliseconds >> 32),
                               UInt8(truncatingIfNeeded: milliseconds >> 24), UInt8(truncatingIfNeeded: milliseconds >> 16),
                               UInt8(truncatingIfNeeded: milliseconds >> 8), UInt8(truncatingIfNeeded: milliseconds),
                               0x70 | UInt8(sequence >> 8),  // version 7
                               UInt8(truncatingIfNeeded: sequence),
                               (bytes[r] & 0x3F) | 0x80,  // RFC 9562 variant
                               bytes[r + 1], bytes[r + 2], bytes[r + 3], bytes[r + 4], bytes[r + 5], bytes[r + 6], bytes[r + 7]))
        }
    }

    /// `ids` with every nil replaced by a new time-ordered id, drawn together.
    static func filling(_ ids: [UUID?]) -> [UUID] {
        var fresh = timeOrdered(count: ids.lazy.filter { $0 == nil }.count).makeIterator()
        return ids.map { $0 ?? fresh.next()! }
    }
}

extension Array where Element == OutgoingMessage {
    /// The messages with an id each: their own, or a new time-ordered one.
    func withIds() -> [OutgoingMessage] {
        zip(self, UUID.filling(map(\.id))).map { message, id in
            var message = message
            message.id = id
            return message
        }
    }
}
