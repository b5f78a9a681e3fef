# The stash-job image, for users who build with Docker. The project itself builds the same
# image without Docker: `make image` (reproducible OCI tarball, see internal/imagebuild).
#
#   docker build --build-arg VERSION=$(git describe --tags) -t stash-job .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=v0.0.0-dev
ARG GIT_COMMIT=unknown
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/kubectl-stash/kubectl-stash/internal/version.version=${VERSION} -X github.com/kubectl-stash/kubectl-stash/internal/version.gitCommit=${GIT_COMMIT}" \
      -o /out/stash-job ./cmd/stash-job && \
    mkdir -p /out/tmp && chmod 1777 /out/tmp && \
    printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/tmp:/sbin/nologin\n' > /out/passwd && \
    printf 'root:x:0:\nnonroot:x:65532:\n' > /out/group

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/passwd /etc/passwd
COPY --from=build /out/group /etc/group
COPY --from=build /out/tmp /tmp
COPY --from=build /out/stash-job /usr/local/bin/stash-job
ENV PATH=/usr/local/bin:/usr/bin:/bin SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt HOME=/tmp
USER 65532:65532
WORKDIR /tmp
ENTRYPOINT ["/usr/local/bin/stash-job"]
