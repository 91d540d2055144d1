import Foundation

/// A claimed message as the claims route answers it. The payload is `payload`, its text, when
/// it is valid UTF-8 (JSON included: a JSON payload comes as the string of its JSON text), and
/// `payload_base64` otherwise; so posting an answer's `payload` or `payload_base64` with its
/// `content_type` back to the batch route stores the same bytes and type. Fields that are nil
/// (`content_type`, `group_key`, `idempotency_key`, `last_error`) are left out. Times are
/// ISO 8601 UTC with milliseconds.
struct ClaimedJSON: Encodable {
    let id: String
    let payload: String?
    let payload_base64: String?
    let content_type: String?
    let headers: [String: String]
    let priority: Int
    /// Claims so far, this one included.
    let attempts: Int
    let group_key: String?
    let idempotency_key: String?
    /// The error the last release recorded.
    let last_error: String?
    let created_at: String
    /// After this the message may go to another consumer: ack, release or extend before.
    let lease_expires_at: String

    init(_ leased: LeasedMessage) {
        let message = leased.message
        id = message.id.uuidString.lowercased()
        let text = String(validating: message.payload, as: UTF8.self)
        payload = text
        payload_base64 = text == nil ? message.payload.base64EncodedString() : nil
        content_type = message.contentType
        headers = message.headers
        priority = message.priority
        attempts = message.attempts
        group_key = message.groupKey
        idempotency_key = message.idempotencyKey
        last_error = message.lastError
        created_at = Self.time(message.createdAt)
        lease_expires_at = Self.time(leased.leaseExpiresAt)
    }

    /// `2025-01-31T12:00:00.123Z`
    static func time(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }
}
