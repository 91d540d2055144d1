// swift-tools-version:6.0
import PackageDescription

/// Depot: a PostgreSQL-backed store-and-forward message system.
/// Built with the Swift toolchain alone: no package dependencies, libpq through a system library.
let package = Package(
    name: "Depot",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "Postgres", targets: ["Postgres"]),
        .library(name: "Depot", targets: ["Depot"]),
        .library(name: "DepotConformance", targets: ["DepotConformance"]),
        .library(name: "DepotHTTP", targets: ["DepotHTTP"]),
        .library(name: "DepotSynapse", targets: ["DepotSynapse"]),
        .executable(name: "depot", targets: ["depot"]),
    ],
    targets: [
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"]), .brew(["libpq"])]
        ),
        .target(name: "Postgres", dependencies: ["CLibPQ"]),
        .target(name: "DepotHTTP"),
        // Child processes started with posix_spawn: the benchmark's nodes and back ends, the tests' too.
        .target(name: "DepotProcess"),
        .target(
            name: "Depot",
            dependencies: ["Postgres", "DepotHTTP"],
            // The schema snapshot is read by people and by SchemaSnapshotTests, not compiled in.
            exclude: ["Schema/schema.sql"],
            // Sources/Depot/Schema/migrations links to the top-level migrations/ folder:
            // the SQL is compiled into the binary, so `depot migrate` works from any folder.
            resources: [.embedInCode("Schema/migrations")]
        ),
        .target(name: "DepotConformance", dependencies: ["Depot"]),
        // Synapse / WSO2 MI import: an adapter that writes Depot's rows, not a layer of the flow.
        .target(name: "DepotSynapse", dependencies: ["Depot", "Postgres"]),
        .executableTarget(name: "depot", dependencies: ["Depot", "DepotHTTP", "DepotProcess", "DepotSynapse", "Postgres"]),
        .target(name: "TestSupport", dependencies: ["Depot", "DepotHTTP", "DepotProcess", "Postgres"], path: "Tests/TestSupport"),
        .testTarget(name: "PostgresTests", dependencies: ["Postgres", "TestSupport"]),
        .testTarget(name: "DepotTests", dependencies: ["Depot", "DepotConformance", "DepotHTTP", "DepotSynapse", "Postgres", "TestSupport", "depot"]),
        .testTarget(name: "DepotHTTPTests", dependencies: ["DepotHTTP", "TestSupport"]),
    ]
)
