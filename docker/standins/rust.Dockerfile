# Stand-in for rust:1.95-slim-bookworm where no registry can be reached
# (scripts/compose-test): Debian's own Rust (rustc-web, 1.96 in
# bookworm-security) on the debootstrapped base, trusting the machine's extra
# CA certificates so that cargo reaches crates.io through a TLS-inspecting proxy.
FROM debian:bookworm-slim
COPY ca-certificates/ /usr/local/share/ca-certificates/
RUN printf '%s\n' 'deb http://deb.debian.org/debian bookworm main' \
      'deb http://deb.debian.org/debian bookworm-updates main' \
      'deb http://deb.debian.org/debian-security bookworm-security main' >/etc/apt/sources.list \
 && apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates rustc-web cargo-web gcc libc6-dev \
 && update-ca-certificates \
 && rm -rf /var/lib/apt/lists/*
ENV CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
