# Depot's image: `depot` built with the Swift toolchain in one stage, run from slim Debian with
# libpq in the other. docker-compose.yml builds it; on its own:
#
#   docker build -t depot .
#   docker run --rm -e DEPOT_DATABASE_URL=postgres://depot:depot@db:5432/depot depot migrate
#
# Build arguments: SWIFT_IMAGE (default swift:6.3-bookworm, the toolchain Depot is tested with)
# and RUNTIME_IMAGE (default debian:bookworm-slim). Keep the two on the same distribution: the
# binary links the build image's glibc, libstdc++, libpq and libcurl dynamically.
ARG SWIFT_IMAGE=swift:6.3-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---- build: a release binary with the Swift runtime and Foundation linked in statically.
# (libcurl4-openssl-dev comes with the official image; it is named because the static link
# of FoundationNetworking needs -lcurl.)
FROM ${SWIFT_IMAGE} AS build
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libpq-dev libcurl4-openssl-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# SwiftPM loads every target of Package.swift, the test targets too, so Tests/ comes along;
# Sources/Depot/Schema/migrations is a link to migrations/, whose SQL is compiled into depot.
COPY Package.swift ./
COPY Sources ./Sources
COPY Tests ./Tests
COPY migrations ./migrations
RUN swift build -c release --static-swift-stdlib --product depot \
    && install -D -m 0755 "$(swift build -c release --static-swift-stdlib --show-bin-path)/depot" /out/depot

# ---- runtime: the binary, libpq, and curl for health checks (libcurl is needed anyway:
# FoundationNetworking links it for https:// endpoints).
FROM ${RUNTIME_IMAGE}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libpq5 ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/depot --shell /usr/sbin/nologin depot \
    && mkdir -p /var/lib/depot/journal \
    && chown -R depot:depot /var/lib/depot
COPY --from=build /out/depot /usr/local/bin/depot
# Journal stores (a node's durable local fallback while PostgreSQL is unreachable) live here;
# give each node its own volume.
ENV DEPOT_JOURNAL_DIR=/var/lib/depot/journal
VOLUME ["/var/lib/depot/journal"]
WORKDIR /var/lib/depot
USER depot
# `depot node --http 0.0.0.0:8080`: ingress, /healthz and /metrics; echo back ends use 9000.
EXPOSE 8080
ENTRYPOINT ["depot"]
CMD ["--help"]
