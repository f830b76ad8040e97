# syntax=docker/dockerfile:1
# Build: docker build -t hume-action .
# Run:   docker run -p 8080:8080 -v hume-data:/data hume-action
#
# One container keeps its jobs in SQLite in the /data volume. Several replicas share:
#   HUME_ACTION_DATABASE_URL=postgres://user:password@host:5432/db   jobs, uploads, predictions,
#                                      idempotency records (migrations run at start-up)
#   HUME_ACTION_DATABASE_POOL_SIZE=10  connections per replica
#   HUME_ACTION_REDIS_URL=redis://host:6379/   the Hume rate limits (per API key) for the fleet
#   HUME_ACTION_SECRET_KEY=<64 hex>    the same on every replica (opens API keys sealed with jobs)
# deploy/compose.yaml runs three replicas behind nginx that way. GET /metrics (Prometheus) and
# GET /openapi.json describe a running replica; /healthz is liveness, /readyz readiness (store,
# Redis, models, ffmpeg).

# Dependencies are compiled in a layer of their own (cargo-chef): a change to the source rebuilds
# only this crate, not candle, tract and sqlx. Models are installed in their own stage, from the
# install scripts alone, so neither a source change nor a dependency bump reinstalls them.
FROM rust:1-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json --bin hume-action
COPY . .
RUN cargo build --release --locked --bin hume-action

FROM debian:bookworm-slim AS models
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates python3-pip python3-venv && rm -rf /var/lib/apt/lists/*
COPY scripts/install-models.sh /src/scripts/install-models.sh
COPY scripts/models /src/scripts/models
RUN /src/scripts/install-models.sh /models

FROM debian:bookworm-slim
# ffmpeg/ffprobe decode audio, video and images (the server checks for them at start-up).
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl ffmpeg && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data hume \
 && mkdir -p /data && chown hume /data
COPY --from=build /src/target/release/hume-action /usr/local/bin/hume-action
COPY --from=models /models /models
ENV HUME_ACTION_LISTEN=0.0.0.0:8080 \
    HUME_ACTION_DATA_DIR=/data \
    HUME_ACTION_MODEL_DIR=/models \
    HUME_ACTION_LOG_JSON=true \
    RUST_LOG=info
USER hume
VOLUME /data
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/hume-action"]
