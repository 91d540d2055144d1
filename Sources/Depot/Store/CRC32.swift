import Foundation

/// CRC-32 (IEEE 802.3, the one zlib and PNG use): a journal record's checksum, so that a torn
/// or damaged record is recognised on replay instead of being read as a message.
enum CRC32 {
    /// The checksum of `bytes`.
    static func checksum(_ bytes: Data) -> UInt32 {
        table.withUnsafeBufferPointer { table in
            bytes.withUnsafeBytes { raw in
                var crc: UInt32 = 0xFFFF_FFFF
                for byte in raw {
                    crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8)
                }
                return crc ^ 0xFFFF_FFFF
            }
        }
    }

    /// One entry per byte value: the reflected polynomial 0xEDB88320 applied eight times.
    private static let table: [UInt32] = (0..<256).map { index in
        var value = UInt32(index)
        for _ in 0..<8 {
            value = value & 1 == 1 ? 0xEDB8_8320 ^ (value >> 1) : value >> 1
        }
        return value
    }
}
