# Multi-stage build: a static canopy binary on distroless, as non-root.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X canopy.dev/canopy/internal/buildinfo.Version=${VERSION} -X canopy.dev/canopy/internal/buildinfo.Commit=${COMMIT}" \
      -o /out/canopy ./cmd/canopy

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/canopy /usr/local/bin/canopy
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/canopy"]
CMD ["serve"]
