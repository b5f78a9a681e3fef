# kubectl-stash — build, image, local cluster and tests.
#   make build         both binaries into bin/
#   make image         bin/stash-job-image.tar (OCI layout tarball, reproducible)
#   make cluster-up    local single-node Kubernetes cluster, job image loaded
#   make cluster-down  stop it and remove every trace of it
#   make test          vet, gofmt, unit tests, then e2e on a cluster it starts and stops
#   make e2e           e2e tests only, against a running cluster
#   make demo          cluster up, sample workload, backup and restore
#   make soak          the long part of the reliability suite (test/soak, docs/reliability.md)
#   make dist          release archives, job image and checksums in dist/ (reproducible)
#   make krew-manifest krew/stash.yaml with the sha256 of each archive in dist/

SHELL := /bin/bash
GO ?= go
export GOTOOLCHAIN := local
export GOFLAGS := -buildvcs=false

# Version from git: a tag when there is one, else v0.0.0-<commit>; -dirty for local changes.
GIT_COMMIT := $(shell git rev-parse --verify -q HEAD 2>/dev/null || echo unknown)
VERSION ?= $(shell v=$$(git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null) && echo $$v || \
             (c=$$(git rev-parse --verify -q --short=12 HEAD 2>/dev/null || echo unknown); \
              d=$$(git diff --quiet HEAD -- 2>/dev/null || echo -dirty); echo v0.0.0-$$c$$d))
IMAGE_REPO ?= ghcr.io/kubectl-stash/stash-job
IMAGE_TAG := $(shell echo '$(VERSION)' | tr -c 'A-Za-z0-9_.\n-' '-')
IMAGE ?= $(IMAGE_REPO):$(IMAGE_TAG)
PKG := github.com/kubectl-stash/kubectl-stash
LDFLAGS := -s -w -X $(PKG)/internal/version.version=$(VERSION) -X $(PKG)/internal/version.gitCommit=$(GIT_COMMIT)
GOARCH_HOST := $(shell $(GO) env GOARCH)
IMAGE_LABELS := -label org.opencontainers.image.version=$(VERSION) -label org.opencontainers.image.revision=$(GIT_COMMIT) \
  -label org.opencontainers.image.source=https://$(PKG) -label org.opencontainers.image.licenses=Apache-2.0

BIN := $(CURDIR)/bin
CLUSTER := $(CURDIR)/test/cluster
# Where the cluster's binaries, caches and state live (outside the clone, shared by clones).
export STASH_CACHE_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/kubectl-stash
CLUSTER_DIR := $(STASH_CACHE_DIR)/cluster

.PHONY: all build image test-images cluster-up cluster-down kubeconfig kubectl-path test unit e2e vet fmt-check verify demo soak clean

all: build

build:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/kubectl-stash ./cmd/kubectl-stash
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/stash-job ./cmd/stash-job

image:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 GOOS=linux GOARCH=$(GOARCH_HOST) $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/linux-$(GOARCH_HOST)/stash-job ./cmd/stash-job
	$(GO) run ./cmd/mkimage -ref $(IMAGE) -out $(BIN)/stash-job-image.tar $(IMAGE_LABELS) \
	  linux/$(GOARCH_HOST)=$(BIN)/linux-$(GOARCH_HOST)/stash-job

cluster-up: image
	bash $(CLUSTER)/up.sh
	bash $(CLUSTER)/up.sh import $(BIN)/stash-job-image.tar

cluster-down:
	bash $(CLUSTER)/down.sh --purge

kubeconfig:
	@echo $(CLUSTER_DIR)/run/admin.kubeconfig

kubectl-path:
	@echo $(CLUSTER_DIR)/bin

vet:
	$(GO) vet ./...
	$(GO) vet -tags e2e ./test/...
	$(GO) vet -tags objectstores ./internal/store/... ./cmd/stash-job/
	$(GO) vet -tags crashpoints ./internal/engine/... ./cmd/stash-job/

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# Dependency direction (see STYLE): the engine imports no Kubernetes, cobra or charm;
# only cmd/ and tests import storage drivers; the job image imports no cli-runtime/cobra/charm.
verify:
	bash test/verify-imports.sh

# the crash-consistency test needs the kill points compiled in (docs/reliability.md)
unit:
	$(GO) test ./...
	$(GO) test -tags crashpoints -count=1 -run Crash ./cmd/stash-job/

# the e2e tests' PostgreSQL image, from Debian's packages (test/images/postgres.sh)
test-images:
	@mkdir -p $(BIN)
	bash test/images/postgres.sh $(BIN)/postgres-image.tar

e2e: build image test-images
	bash test/objectstores/objectstores.sh install
	bash $(CLUSTER)/up.sh import $(BIN)/stash-job-image.tar
	bash $(CLUSTER)/up.sh import $(BIN)/postgres-image.tar
	STASH_BIN=$(BIN) STASH_IMAGE=$(IMAGE) STASH_IMAGE_TAR=$(BIN)/stash-job-image.tar \
	STASH_NODE_IP=$$(cat $(CLUSTER_DIR)/run/node-ip) STASH_VERSITYGW=$$(bash test/objectstores/objectstores.sh path versitygw) \
	KUBECONFIG=$(CLUSTER_DIR)/run/admin.kubeconfig STASH_KUBECTL_DIR=$(CLUSTER_DIR)/bin \
	  $(GO) test -tags e2e -count=1 -timeout 30m -v $(if $(E2E_RUN),-run '$(E2E_RUN)') ./test/e2e/... 2>&1 | grep -v -e "^=== \(RUN\|PAUSE\|CONT\)" ; exit $${PIPESTATUS[0]}

test:
	bash test/test.sh

demo:
	bash test/demo.sh

soak: build
	bash test/soak/soak.sh

clean:
	rm -rf $(BIN) $(DIST)

# Benchmark (not a test): stash-job against restic on generated data, medians and ratios.
# Options via the environment: ROUNDS, SCALE, SEED, TOOLS, BENCH_DIR, KEEP (test/bench/bench.sh).
.PHONY: bench
bench: build
	bash test/bench/bench.sh

# Real object-store servers on 127.0.0.1 for the store conformance suite: S3 (VersityGW),
# GCS (fake-gcs-server), Azure (Azurite). Installed once into $(STASH_CACHE_DIR)/tools.
#   make objectstores-up     install what is missing, start the servers, create the buckets
#   make test-objectstores   the suite against all three (needs objectstores-up first)
#   make objectstores-down   stop the servers this repo started, remove their data
OBJECTSTORES := bash $(CURDIR)/test/objectstores/objectstores.sh

.PHONY: objectstores-up objectstores-down test-objectstores

objectstores-up:
	$(OBJECTSTORES) up

objectstores-down:
	$(OBJECTSTORES) down

test-objectstores:
	@env=$$($(OBJECTSTORES) env); \
	  if [ ! -f "$$env" ]; then echo "no object-store servers are running: make objectstores-up"; exit 1; fi; \
	  set -a; . "$$env"; set +a; \
	  $(GO) test -tags objectstores -count=1 ./internal/store/... && \
	  $(GO) test -tags objectstores -count=1 -run 'ThroughFaultyProxy' ./cmd/stash-job/

# Release packaging (.github/workflows/release.yml runs `make dist krew-manifest` on a tag):
#   make dist           $(DIST): kubectl-stash_VERSION_OS_ARCH.tar.gz (.zip for Windows) per
#                       DIST_PLATFORMS, each with the binary, kubectl_complete-stash, LICENSE and
#                       README.md; stash-job_VERSION_image.tar, the job image for IMAGE_PLATFORMS
#                       as one multi-arch index (OCI layout); kubectl-stash_VERSION_checksums.txt.
#                       Reproducible: -trimpath, the version and commit from git, archive entries
#                       in name order with owner 0:0 and the commit's time, gzip without name/time.
#   make krew-manifest  $(KREW_MANIFEST) from krew/stash.yaml.tmpl: a uri under RELEASE_URL and
#                       the sha256 of each archive in $(DIST) (run make dist first)
#   make test-krew      the packaging tests (test/krew/test.sh, part of make test)
DIST ?= $(CURDIR)/dist
DIST_PLATFORMS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64
IMAGE_PLATFORMS ?= linux/amd64 linux/arm64
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
RELEASE_URL ?= https://$(PKG)/releases/download/$(VERSION)
KREW_MANIFEST ?= $(CURDIR)/krew/stash.yaml
DIST_BUILD := $(BIN)/dist
MKDIST := $(DIST_BUILD)/mkdist

.PHONY: dist krew-manifest test-krew mkdist print-version print-image

# tools/mkdist (archives, checksums, manifest) lives in the tools module and needs only the standard library
mkdist:
	@mkdir -p $(DIST_BUILD)
	cd tools && CGO_ENABLED=0 $(GO) build -trimpath -o $(MKDIST) ./mkdist

dist: mkdist
	rm -rf $(DIST) $(DIST_BUILD)/*-*/
	@mkdir -p $(DIST)
	@set -e; for p in $(DIST_PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; exe=; [ $$os != windows ] || exe=.exe; out=$(DIST_BUILD)/$$os-$$arch/kubectl-stash$$exe; \
	  echo "kubectl-stash $$p"; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $$out ./cmd/kubectl-stash; \
	  $(MKDIST) archive -dist $(DIST) -version $(VERSION) -platform $$p -mtime $(SOURCE_DATE_EPOCH) -binary $$out \
	    -completion-dir krew -license LICENSE -readme README.md; \
	done
	@set -e; for p in $(IMAGE_PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; echo "stash-job $$p"; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(DIST_BUILD)/$$os-$$arch/stash-job ./cmd/stash-job; \
	done
	$(GO) run ./cmd/mkimage -ref $(IMAGE) -out $(DIST)/stash-job_$(VERSION)_image.tar $(IMAGE_LABELS) \
	  $(foreach p,$(IMAGE_PLATFORMS),$(p)=$(DIST_BUILD)/$(subst /,-,$(p))/stash-job)
	$(MKDIST) checksums -out $(DIST)/kubectl-stash_$(VERSION)_checksums.txt $$(find $(DIST) -maxdepth 1 -type f ! -name '*_checksums.txt' | sort)
	@cat $(DIST)/kubectl-stash_$(VERSION)_checksums.txt

krew-manifest: mkdist
	$(MKDIST) manifest -template krew/stash.yaml.tmpl -out $(KREW_MANIFEST) -version $(VERSION) -dist $(DIST) \
	  -release-url $(RELEASE_URL) -platforms '$(DIST_PLATFORMS)'

test-krew:
	bash test/krew/test.sh

print-version:
	@echo $(VERSION)

print-image:
	@echo $(IMAGE)
