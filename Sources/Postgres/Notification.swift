/// A message received through PostgreSQL's LISTEN/NOTIFY.
public struct PostgresNotification: Sendable, Equatable {
    /// The channel it was sent on.
    public let channel: String
    /// The payload given to NOTIFY (empty when none).
    public let payload: String
    /// The backend process that sent it.
    public let senderPID: Int32
}
