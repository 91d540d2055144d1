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
        .executable(name: "depot", targets: ["depot"]),
    ],
    targets: [
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"]), .brew(["libpq"])]
        ),
        .target(name: "Postgres", dependencies: ["CLibPQ"]),
        .target(
            name: "Depot",
            dependencies: ["Postgres"],
            exclude: [],
            // Sources/Depot/Schema/migrations links to the top-level migrations/ folder:
            // the SQL is compiled into the binary, so `depot migrate` works from any folder.
            resources: [.embedInCode("Schema/migrations")]
        ),
        .target(name: "DepotConformance", dependencies: ["Depot"]),
        .executableTarget(name: "depot", dependencies: ["Depot", "Postgres"]),
        .target(name: "TestSupport", dependencies: ["Depot", "Postgres"], path: "Tests/TestSupport"),
        .testTarget(name: "PostgresTests", dependencies: ["Postgres", "TestSupport"]),
        .testTarget(name: "DepotTests", dependencies: ["Depot", "DepotConformance", "Postgres", "TestSupport", "depot"]),
    ]
)
