import CLibPQ

/// The rows a statement returned. Holds the libpq result; safe to read from any thread.
public final class Rows: @unchecked Sendable, Sequence {
    // The PGresult is immutable once obtained, so reading it from several threads is safe.
    let result: OpaquePointer?
    /// Column names, in order.
    public let columns: [String]
    let types: [PostgresType]
    /// Each column name's position, looked up once per result rather than once per row decoded
    /// by name (the first column wins when two share a name, as `firstIndex` did).
    private let positions: [String: Int]
    /// Rows affected by INSERT/UPDATE/DELETE, or rows returned by SELECT.
    public let affectedRows: Int
    /// How many rows came back.
    public let count: Int
    /// The command tag without its counts: "SELECT", "COMMIT", "ROLLBACK", "INSERT"…
    public let commandTag: String

    init(result: OpaquePointer?) {
        self.result = result
        guard let result else {
            columns = []
            types = []
            affectedRows = 0
            count = 0
            commandTag = ""
            positions = [:]
            return
        }
        let fieldCount = Int(PQnfields(result))
        columns = (0..<fieldCount).map { String(cString: PQfname(result, Int32($0))) }
        types = (0..<fieldCount).map { PostgresType(oid: PQftype(result, Int32($0))) }
        count = Int(PQntuples(result))
        affectedRows = Int(String(cString: PQcmdTuples(result))) ?? count
        commandTag = String(cString: PQcmdStatus(result)).split(separator: " ").first.map(String.init) ?? ""
        positions = Dictionary(columns.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
    }

    deinit { if let result { PQclear(result) } }

    public subscript(index: Int) -> Row { Row(rows: self, index: index) }

    /// The first row, if any.
    public var first: Row? { count > 0 ? self[0] : nil }

    public func makeIterator() -> AnyIterator<Row> {
        var next = 0
        return AnyIterator {
            guard next < self.count else { return nil }
            defer { next += 1 }
            return self[next]
        }
    }

    func columnIndex(_ name: String) -> Int? { positions[name] }
}

/// One row of a result. Decode columns by name or position into Swift types.
public struct Row: Sendable {
    let rows: Rows
    let index: Int

    /// Decodes the named column.
    public func decode<T: PostgresDecodable>(_ column: String, as type: T.Type = T.self) throws -> T {
        guard let position = rows.columnIndex(column) else {
            throw PostgresError(kind: .decoding, message: "no column \"\(column)\" in the result (columns: \(rows.columns.joined(separator: ", ")))")
        }
        return try decode(at: position, as: T.self)
    }

    /// Decodes the column at `position` (0-based).
    public func decode<T: PostgresDecodable>(at position: Int, as type: T.Type = T.self) throws -> T {
        guard position >= 0, position < rows.columns.count else {
            throw PostgresError(kind: .decoding, message: "column index \(position) is out of range; the result has \(rows.columns.count) columns")
        }
        let result = rows.result!
        let columnType = rows.types[position]
        do {
            if PQgetisnull(result, Int32(index), Int32(position)) == 1 { return try T.decodeNull() }
            let length = Int(PQgetlength(result, Int32(index), Int32(position)))
            let pointer = UnsafeRawPointer(PQgetvalue(result, Int32(index), Int32(position))!)
            return try T.decode(from: UnsafeRawBufferPointer(start: pointer, count: length), type: columnType)
        } catch let problem as DecodingProblem {
            throw PostgresError(
                kind: .decoding,
                message: "cannot decode column \"\(rows.columns[position])\" (index \(position), type \(columnType)) as \(T.self): \(problem.reason)")
        }
    }

    /// Decodes the leading columns into a tuple: `try row.decode((UUID, String, Int).self)`.
    public func decode<each T: PostgresDecodable>(_ types: (repeat each T).Type) throws -> (repeat each T) {
        var position = 0
        func next<U: PostgresDecodable>(_: U.Type) throws -> U {
            defer { position += 1 }
            return try decode(at: position, as: U.self)
        }
        return (repeat try next((each T).self))
    }
}
