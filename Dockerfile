# The unchained server in a small image: `docker build -t unchained .`
# (docs/DEPLOYMENT.md). Settings come from the environment, as outside a
# container (README, Configuration); the defaults below keep the SQLite
# database and the generated SECRET_KEY in /data and the uploads in
# /media, two volumes.

# Build stage: the release binary (templates and static files are built
# into it, so nothing else is copied to the runtime stage).
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src src
COPY templates templates
COPY static static
COPY schema schema
COPY data data
# Cargo.toml names this bench target; the build needs its file present.
COPY benches benches
RUN cargo build --release --locked --bin unchained \
 && strip target/release/unchained

# Runtime stage: Debian slim with the certificate authorities (SMTP over
# TLS, PostgreSQL with sslmode) and nothing else.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 unchained \
 && useradd --system --uid 10001 --gid unchained --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin unchained \
 && mkdir -p /data /media /static \
 && chown unchained:unchained /data /media /static
COPY --from=build /src/target/release/unchained /usr/local/bin/unchained

# Listen on every interface inside the container only (outside it the
# default stays 127.0.0.1:8000). Set ALLOWED_HOSTS, SECRET_KEY and the
# rest with `docker run -e` or an env file.
ENV DATABASE_URL=sqlite:////data/db.sqlite3 \
    MEDIA_ROOT=/media \
    STATIC_ROOT=/static \
    BIND_ADDRESS=0.0.0.0:8000

USER unchained
WORKDIR /data
VOLUME ["/data", "/media"]
EXPOSE 8000
# `serve` finishes the requests under way within GRACEFUL_TIMEOUT (30 s)
# after SIGTERM: give `docker stop` longer than that (--stop-timeout 40,
# or compose's stop_grace_period).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/unchained"]
CMD ["serve"]
