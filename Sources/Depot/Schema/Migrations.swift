/// One versioned, forward-only SQL file from `migrations/`, compiled into the binary.
public struct Migration: Sendable, Equatable {
    /// The number the file name starts with; applied in ascending order.
    public let version: Int
    /// The file name without its number and extension (`0001_schema.sql` → `schema`).
    public let name: String
    public let sql: String

    /// Builds a migration from its file name, `NNNN_name.sql`.
    init(file: String, bytes: [UInt8]) {
        let stem = file.hasSuffix(".sql") ? String(file.dropLast(4)) : file
        let parts = stem.split(separator: "_", maxSplits: 1)
        version = Int(parts[0]) ?? -1
        name = parts.count > 1 ? String(parts[1]) : stem
        sql = String(decoding: bytes, as: UTF8.self)
    }
}

extension Migration {
    /// Every migration, in order. A new file in `migrations/` needs one line here;
    /// `MigrationTests` fails when the two disagree.
    public static let all: [Migration] = [
        Migration(file: "0001_schema.sql", bytes: PackageResources._001_schema_sql),
        Migration(file: "0002_processing.sql", bytes: PackageResources._002_processing_sql),
        Migration(file: "0003_admin.sql", bytes: PackageResources._003_admin_sql),
        Migration(file: "0004_speed.sql", bytes: PackageResources._004_speed_sql),
        Migration(file: "0005_claim_speed.sql", bytes: PackageResources._005_claim_speed_sql),
        Migration(file: "0006_enqueue_speed.sql", bytes: PackageResources._006_enqueue_speed_sql),
        Migration(file: "0007_vacuum_pacing.sql", bytes: PackageResources._007_vacuum_pacing_sql),
        Migration(file: "0008_unannounced_inserts.sql", bytes: PackageResources._008_unannounced_inserts_sql),
        Migration(file: "0009_retention.sql", bytes: PackageResources._009_retention_sql),
        Migration(file: "0010_cold_statistics.sql", bytes: PackageResources._010_cold_statistics_sql),
        Migration(file: "0011_name_characters.sql", bytes: PackageResources._011_name_characters_sql),
        Migration(file: "0012_cluster_pace.sql", bytes: PackageResources._012_cluster_pace_sql),
        Migration(file: "0013_in_order.sql", bytes: PackageResources._013_in_order_sql),
        Migration(file: "0014_message_groups.sql", bytes: PackageResources._014_message_groups_sql),
        Migration(file: "0015_consumer_api.sql", bytes: PackageResources._015_consumer_api_sql),
        Migration(file: "0016_message_operations.sql", bytes: PackageResources._016_message_operations_sql),
        Migration(file: "0017_store_connection.sql", bytes: PackageResources._017_store_connection_sql),
        Migration(file: "0018_roles.sql", bytes: PackageResources._018_roles_sql),
        Migration(file: "0020_resequencing.sql", bytes: PackageResources._020_resequencing_sql),
        Migration(file: "0021_roles_sequence_gaps.sql", bytes: PackageResources._021_roles_sequence_gaps_sql),
        Migration(file: "0022_group_endpoints.sql", bytes: PackageResources._022_group_endpoints_sql),
        Migration(file: "0023_cheaper_insert.sql", bytes: PackageResources._023_cheaper_insert_sql),
        Migration(file: "0024_headers_check_inline.sql", bytes: PackageResources._024_headers_check_inline_sql),
        Migration(file: "0025_one_trigger_call.sql", bytes: PackageResources._025_one_trigger_call_sql),
        Migration(file: "0026_no_vacuum_truncate.sql", bytes: PackageResources._026_no_vacuum_truncate_sql),
        Migration(file: "0027_vacuum_truncate_again.sql", bytes: PackageResources._027_vacuum_truncate_again_sql),
    ]
}
