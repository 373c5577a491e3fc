# syntax=docker/dockerfile:1
# The guts-node image: a release build, run on Debian slim as an unprivileged user.
#
#   docker build -t guts-node .
#   docker run --rm -p 8080:8080 -v guts-data:/data guts-node
#
# git is installed on purpose: the node's maintenance task runs `git repack` on
# repositories that accumulated many packs (one per push). Without git the node serves
# the packs as pushed (correct, but clones send more bytes and every push adds a pack
# to search). That costs about 40 MB of image and a larger attack surface; the node
# runs git only with fixed arguments on its own repositories. tini reaps git's
# children and forwards SIGTERM, which the node handles (drain within
# GUTS_SHUTDOWN_TIMEOUT).

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p guts-node \
 && install -D -m 0755 target/release/guts-node /out/guts-node

FROM debian:${DEBIAN_RELEASE}-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates git tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 guts \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /data \
      --shell /usr/sbin/nologin guts \
 && mkdir -p /data /backup \
 && chown 10001:10001 /data /backup \
 && chmod 0700 /data /backup
COPY --from=build /out/guts-node /usr/local/bin/guts-node
# Container defaults: listen on every interface, data in the volume, JSON logs. HOME
# points at /tmp so that git never looks for configuration in the data volume.
ENV GUTS_DATA_DIR=/data \
    GUTS_API_ADDR=0.0.0.0:8080 \
    GUTS_METRICS_ADDR=0.0.0.0:9090 \
    GUTS_SSH_ADDR=0.0.0.0:2222 \
    GUTS_LOG_FORMAT=json \
    HOME=/tmp
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
# ssh (git over SSH), api (REST, git, admin, probes), p2p, metrics
EXPOSE 2222 8080 9000 9090
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/guts-node"]
CMD ["run"]
