# Built through docker-compose.yml by scripts/compose-test (in CI), which then
# serves the stack; scripts/check-docker lints this file with hadolint and
# checks the runtime stage's packages against the binary's libraries.

FROM rust:1.95-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# Dependencies alone first: this layer is reused until Cargo.toml or Cargo.lock change.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && cargo build --release --locked \
 && rm -rf src
COPY migrations migrations
COPY src src
# Make cargo rebuild our crate over the placeholder build above.
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked

FROM debian:bookworm-slim
# libpq5 is the one library the binary links beyond libc and libgcc.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq5 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin taskgate
WORKDIR /app
COPY --from=build /app/target/release/taskgate /usr/local/bin/taskgate
COPY config config
ENV APP_ENV=production \
    APP_CONFIG_DIR=/app/config \
    RUST_LOG=info
USER 10001
EXPOSE 8000
# bash's /dev/tcp keeps curl out of the image; the port is the one the
# service listens on (APP__SERVER__PORT, else config's 8000).
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${APP__SERVER__PORT:-8000} && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q ' 200 ' <&3"]
ENTRYPOINT ["taskgate"]
CMD ["serve"]
