# syntax=docker/dockerfile:1
#
# shardgate container image.
#
#   docker build -t shardgate .
#   docker run --rm -p 6432:6432 \
#       -v "$PWD/shardgate.yaml:/etc/shardgate/shardgate.yaml:ro" shardgate
#
# The proxy links the PostgreSQL parser (pg_query_go) through cgo, so it is
# built with CGO_ENABLED=1 against glibc and runs on a glibc image of the
# same Debian release (bookworm) as the builder.
#
# The cache mounts need BuildKit, the default builder of Docker 23 and later
# and of docker compose.

ARG GO_VERSION=1.26
ARG DEBIAN_RELEASE=bookworm

# ---------------------------------------------------------------------------
FROM golang:${GO_VERSION}-${DEBIAN_RELEASE} AS build

WORKDIR /src

# Dependencies first, so that editing the sources does not download them
# again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download

COPY . .

# Stamped into `shardgate version`.
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=1 go build -trimpath -buildvcs=false \
        -ldflags "-s -w -X main.version=${VERSION}" \
        -o /out/shardgate ./cmd/shardgate

# ---------------------------------------------------------------------------
FROM debian:${DEBIAN_RELEASE}-slim

# ca-certificates: the system roots for backend.tls verify-full when
# backend.ca_file is empty. The binary needs nothing else but glibc.
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates; \
    rm -rf /var/lib/apt/lists/*; \
    groupadd --system --gid 10001 shardgate; \
    useradd --system --uid 10001 --gid shardgate --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin shardgate; \
    mkdir -p /etc/shardgate

COPY --from=build /out/shardgate /usr/local/bin/shardgate

USER shardgate:shardgate
EXPOSE 6432

# Mount the configuration at /etc/shardgate/shardgate.yaml. Inside a
# container, listen on every interface (listen.addr 0.0.0.0:6432, or
# SHARDGATE_LISTEN_ADDR=0.0.0.0:6432): 127.0.0.1 is the container's own
# loopback and unreachable through a published port.
ENTRYPOINT ["shardgate"]
CMD ["serve", "--config", "/etc/shardgate/shardgate.yaml"]
