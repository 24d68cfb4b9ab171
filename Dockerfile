# Flywheel in one image: the `flywheel` binary on Debian slim, running as a non-root user,
# its embedded store (or its admin-token file, with PostgreSQL) under the /data volume.
#
#   docker build -t flywheel .
#   docker run -d --name flywheel -p 8080:8080 -v flywheel-data:/data --stop-timeout 20 flywheel
#   docker exec flywheel flywheel token show         # the generated admin token
#   docker exec flywheel flywheel keys create shop --scope server
#
# Scale-out (PostgreSQL, NATS, Redis, api and worker processes): deploy/docker-compose.yml
# and docs/deployment.md. Give `docker stop` at least 20 s (`--stop-timeout 20`,
# compose `stop_grace_period: 20s`): a graceful stop may take up to the server's 12 s
# deadline plus 2 s for blocking work, and Docker's default of 10 s would cut it short.

# The toolchain the project is built and tested with (`rustc --version`), and the Debian
# release of both the build and the runtime images (the binary links the build's glibc).
ARG RUST_VERSION=1.95.0
ARG DEBIAN_RELEASE=bookworm

# ---- 1. The workspace's skeleton: manifests, the lock file, .cargo/config.toml and an
# empty stub for every crate's lib.rs/main.rs. What this stage outputs changes only when
# a manifest, the lock file or the set of crates changes, so the dependency layer of the
# next stage stays cached while sources change (what `cargo chef` does, without the tool).
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS skeleton
WORKDIR /src
COPY . .
RUN set -eu; \
    mkdir -p /skeleton; \
    cp Cargo.toml Cargo.lock /skeleton/; \
    cp -r .cargo /skeleton/.cargo; \
    for manifest in crates/*/Cargo.toml bench/*/Cargo.toml; do \
        dir=$(dirname "$manifest"); \
        mkdir -p "/skeleton/$dir/src"; \
        cp "$manifest" "/skeleton/$dir/Cargo.toml"; \
        if [ -f "$dir/src/lib.rs" ]; then : > "/skeleton/$dir/src/lib.rs"; fi; \
        if [ -f "$dir/src/main.rs" ]; then echo 'fn main() {}' > "/skeleton/$dir/src/main.rs"; fi; \
    done

# ---- 2. Build: every dependency first (cached), then the workspace itself.
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
WORKDIR /src
COPY --from=skeleton /skeleton/ ./
RUN cargo build --release --locked -p flywheel
COPY . .
# COPY keeps the sources' old timestamps: make them newer than the stubs' build, or cargo
# would take the stubs for up to date and ship an empty `fn main() {}` (the --version
# check below catches that: a stub prints nothing).
RUN find crates console docs -type f -exec touch {} + \
    && cargo build --release --locked -p flywheel \
    && install -m 0755 target/release/flywheel /usr/local/bin/flywheel \
    && /usr/local/bin/flywheel --version | grep -q '^flywheel '

# ---- 3. Runtime. The binary needs glibc, libm and libgcc_s only (SQLite is compiled in,
# TLS roots for the SMTP relay are compiled in, time zones are compiled in), and renders
# templates in sandbox child processes of its own executable (`flywheel __render-worker`),
# so nothing else is installed. bash comes with the image and serves the health check.
FROM debian:${DEBIAN_RELEASE}-slim
RUN groupadd --system --gid 10001 flywheel \
    && useradd --system --uid 10001 --gid flywheel --home-dir /data --shell /usr/sbin/nologin flywheel \
    && mkdir -p /data \
    && chown flywheel:flywheel /data \
    && chmod 0700 /data
COPY --from=build /usr/local/bin/flywheel /usr/local/bin/flywheel
USER flywheel
WORKDIR /data
# `docker exec … flywheel token show` and the other commands find the data directory.
ENV FLYWHEEL_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8080
STOPSIGNAL SIGTERM
# Liveness without curl: one HTTP/1.0 request over bash's /dev/tcp to /healthz on the
# port of FLYWHEEL_LISTEN (8080 unless set). Load balancers should use /readyz instead
# (it also checks the store; docs/deployment.md). start-period covers the audience index
# being built at start, before the port opens.
HEALTHCHECK --interval=10s --timeout=3s --start-period=300s --retries=3 \
    CMD ["bash", "-c", "port=${FLYWHEEL_LISTEN##*:}; exec 3<>/dev/tcp/127.0.0.1/${port:-8080} && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["flywheel"]
CMD ["serve", "--listen", "0.0.0.0:8080", "--data-dir", "/data"]
