# Both binaries in one small image. Build: docker build -t velodrome/velodrome:0.1.0 .
# The rendered Deployments run `velodrome MODE ...` (the entrypoint plus their args) as the
# non-root user 65532, with a read-only root filesystem.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p velodrome -p velogen \
 && strip target/release/velodrome target/release/velogen

# glibc and CA certificates, nothing else: no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/velodrome /usr/local/bin/velodrome
COPY --from=build /src/target/release/velogen /usr/local/bin/velogen
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/velodrome"]
