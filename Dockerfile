# syntax=docker/dockerfile:1
#
# The pdp sidecar image.
#
#   docker build -t pdp:latest .
#   docker run --rm -p 50051:50051 pdp:latest
#   docker run --rm -p 50051:50051 -v "$PWD/policies.yaml:/etc/pdp/policies.yaml:ro" pdp:latest
#
# Both stages use the same glibc-based image, never Alpine: cel-expr-python
# publishes glibc (manylinux) wheels only, so it cannot be installed on musl.
# The builder and the runtime must share the base image because a venv's
# interpreter is a symlink to the base image's python.

FROM python:3.11-slim-bookworm AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

RUN python -m venv /opt/pdp

# A C compiler for pdp's own extension (the injection scorer, setup.py);
# the runtime stage copies the built venv only.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY pdp ./pdp

# --only-binary: every dependency ships manylinux wheels for amd64 and arm64;
# failing here is clearer than a source build without a compiler.
RUN /opt/pdp/bin/pip install --only-binary=:all: /src
# The extensions are optional to setuptools; the image must have them.
RUN /opt/pdp/bin/python -c "import pdp.engine._injection_native, pdp.engine._deobfuscate_native"


FROM python:3.11-slim-bookworm

LABEL org.opencontainers.image.title="pdp" \
      org.opencontainers.image.description="Policy decision point sidecar for AI agents (gRPC)" \
      org.opencontainers.image.licenses="Apache-2.0"

# Bytecode was compiled at install time; the root filesystem may be read-only.
ENV PATH=/opt/pdp/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# A fixed numeric UID/GID, so that Kubernetes' runAsNonRoot can verify it and
# volume ownership is predictable.
RUN groupadd --system --gid 10001 pdp \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin pdp \
    && mkdir -p /etc/pdp /var/lib/pdp \
    && chown 10001:10001 /var/lib/pdp

COPY --from=builder /opt/pdp /opt/pdp
# The default snapshot; mount a file or a ConfigMap over /etc/pdp to replace it.
COPY examples/policies.yaml /etc/pdp/policies.yaml

# Spend ledger, approvals, decision log and webhook outbox live here.
VOLUME ["/var/lib/pdp"]

USER 10001:10001
EXPOSE 50051

# 0.0.0.0 because a published port (and a Kubernetes gRPC probe) reaches the
# container on its own address, not on its loopback.
ENTRYPOINT ["pdp", "serve"]
CMD ["--snapshot", "/etc/pdp/policies.yaml", "--listen", "0.0.0.0:50051", "--state", "/var/lib/pdp/state.db"]
