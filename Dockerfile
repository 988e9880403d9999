# Tandem: multi-stage build of a static binary, run as a non-root user.
# The build stage runs the same steps as `make build`.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN make build BIN=/out/tandem && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/tandem /usr/local/bin/tandem
COPY configs/tandem.yaml /etc/tandem/tandem.yaml
COPY --from=build --chown=65532:65532 /out/data /var/lib/tandem
# Signaling/web, media (one UDP port).
EXPOSE 7880/tcp 7882/udp
VOLUME ["/var/lib/tandem"]
ENV TANDEM_DATA_DIR=/var/lib/tandem
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/tandem"]
CMD ["serve", "--config", "/etc/tandem/tandem.yaml"]
