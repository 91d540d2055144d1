/// A SQLSTATE code: PostgreSQL's five-character error code.
///
/// Every code Depot branches on is named here and nowhere else, so a reader sees in one place
/// which errors change what Depot does (the rest are reported as they came).
public struct SQLState: Hashable, Sendable, CustomStringConvertible {
    public let code: String
    public init(_ code: String) { self.code = code }
    public var description: String { code }

    /// The class: the first two characters ("23" for integrity constraint violations).
    public var errorClass: String { String(code.prefix(2)) }

    // Integrity constraints (class 23): a duplicate id or key, an undeclared store, a refused row.
    public static let uniqueViolation = SQLState("23505")
    public static let foreignKeyViolation = SQLState("23503")
    public static let checkViolation = SQLState("23514")
    public static let notNullViolation = SQLState("23502")
    /// RAISE EXCEPTION without a code, e.g. a deferred constraint trigger at commit.
    public static let raiseException = SQLState("P0001")
    public static let serializationFailure = SQLState("40001")
    public static let lockNotAvailable = SQLState("55P03")
    /// An object named in a function call does not exist (an unknown store, processor or message).
    public static let undefinedObject = SQLState("42704")
    public static let undefinedTable = SQLState("42P01")
    /// A prepared statement is missing (26000) or already exists (42P05): the connection's server
    /// session changed under it, as behind a transaction pool.
    public static let invalidSQLStatementName = SQLState("26000")
    public static let duplicatePreparedStatement = SQLState("42P05")
    /// A function's argument is out of range or malformed (Depot's SQL functions raise it with a hint).
    public static let invalidParameterValue = SQLState("22023")
    /// The object is busy: a leased message an operation refuses without force.
    public static let objectInUse = SQLState("55006")
    /// A statement cancelled (statement_timeout or a cancel request): the server is overloaded.
    public static let queryCanceled = SQLState("57014")
    /// A write on a read-only server, as during a failover to a standby.
    public static let readOnlySQLTransaction = SQLState("25006")
    // The server is going away or not taking connections yet: a new connection is needed.
    public static let adminShutdown = SQLState("57P01")
    public static let crashShutdown = SQLState("57P02")
    public static let cannotConnectNow = SQLState("57P03")
    /// A missing privilege: e.g. a producer role may not INSERT or COPY into `depot.messages`.
    public static let insufficientPrivilege = SQLState("42501")
    /// Depot's own: `depot.store_batch` refused the calling role this store (`depot.producer_stores`, migration 0018).
    public static let storeNotAllowed = SQLState("42D01")
    public static let invalidPassword = SQLState("28P01")
    public static let invalidAuthorization = SQLState("28000")
    public static let invalidCatalogName = SQLState("3D000")

    /// Class 08: the connection failed.
    public static let connectionExceptionClass = "08"
    /// Class 22: the data was wrong (an invalid value for its type), not the server.
    public static let dataExceptionClass = "22"
    /// Class 53: the server ran out of something (connections, memory, disk).
    public static let insufficientResourcesClass = "53"
}
