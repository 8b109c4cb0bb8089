# The skiff image: one image for every split-mode process (`skiff api`, `skiff controller`,
# `skiff worker`, `skiff migrate`), and for the combined node (`skiff up --no-tui`).
#
#   docker build -t skiff .                              # anywhere with network: installs with pnpm
#
# Without network (CI here), assemble the contents on the host from its pnpm store, and build from a
# locally imported Node base (scripts/build-node-image.sh makes one):
#
#   node deploy/image/prepare.mjs --offline
#   docker build --build-arg BASE_IMAGE=skiff-test-node:latest --build-arg SKIFF_DEPS=context \
#     --build-arg SYSTEM_PACKAGES= -t skiff .
#
# The final stage holds Node, the production dependencies and one bundled ES module; no tsx,
# TypeScript, vitest or pnpm. It runs as uid 10001 (numeric, so Kubernetes' runAsNonRoot can check it).
ARG BASE_IMAGE=node:20-bookworm-slim

FROM ${BASE_IMAGE} AS build
# install: pnpm installs from the registry here. context: deploy/image/.build, made on the host, is used.
ARG SKIFF_DEPS=install
# context: where in the build context prepare.mjs put the contents (one directory per concurrent build).
ARG SKIFF_BUILD_DIR=deploy/image/.build
ARG PNPM_VERSION=10.34.9
WORKDIR /src
# Manifests first: the install layer stays cached until a manifest or the lockfile changes.
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml ./
COPY apps/api/package.json apps/api/
COPY apps/cli/package.json apps/cli/
COPY apps/controller/package.json apps/controller/
COPY apps/worker/package.json apps/worker/
COPY packages/bus/package.json packages/bus/
COPY packages/protocol/package.json packages/protocol/
COPY packages/store/package.json packages/store/
COPY packages/testkit/package.json packages/testkit/
RUN if [ "$SKIFF_DEPS" = install ]; then \
      npm install -g "pnpm@${PNPM_VERSION}" && pnpm install --frozen-lockfile; \
    fi
COPY . .
RUN case "$SKIFF_DEPS" in \
      install) node deploy/image/prepare.mjs /out ;; \
      context) test -f "$SKIFF_BUILD_DIR/dist/skiff.mjs" \
                 || { echo "SKIFF_DEPS=context: run 'node deploy/image/prepare.mjs --offline $SKIFF_BUILD_DIR' first" >&2; exit 1; }; \
               cp -a "$SKIFF_BUILD_DIR" /out ;; \
      *) echo "SKIFF_DEPS must be install or context, got '$SKIFF_DEPS'" >&2; exit 1 ;; \
    esac

FROM ${BASE_IMAGE}
# What job steps under the bwrap driver find in the worker's root filesystem (bubblewrap itself, git
# and CA certificates for clone steps). Empty, or a base without apt-get, installs nothing.
ARG SYSTEM_PACKAGES="bubblewrap slirp4netns iproute2 git ca-certificates"
RUN if [ -n "$SYSTEM_PACKAGES" ] && command -v apt-get >/dev/null 2>&1; then \
      apt-get update && apt-get install -y --no-install-recommends $SYSTEM_PACKAGES \
      && rm -rf /var/lib/apt/lists/*; \
    fi \
 && mkdir -p /var/lib/skiff && chown 10001:10001 /var/lib/skiff && chmod 0700 /var/lib/skiff
COPY --from=build /out /app
ENV NODE_ENV=production \
    SKIFF_HOME=/var/lib/skiff \
    HOME=/var/lib/skiff \
    PATH=/app/bin:/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin
LABEL org.opencontainers.image.title="skiff" \
      org.opencontainers.image.description="Skiff: API, controller and sandboxed job workers"
USER 10001:10001
WORKDIR /var/lib/skiff
# 8787 API, 8788 controller status, 8789 worker health.
EXPOSE 8787 8788 8789
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 CMD ["node", "/app/healthcheck.mjs"]
ENTRYPOINT ["skiff"]
CMD ["--help"]
