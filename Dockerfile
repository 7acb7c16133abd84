# The one image every pod runs: the seed's `python3 process.py <file_number> <level>` and
# `python3 merge.py 0 <number>` in WORKDIR /app, as a non-root user.
#
#   docker build -t workload:0.1.0 .
#   docker run --rm -v "$PWD/data:/mnt/vol" workload:0.1.0 python3 process.py 0 1
#
# Pin the base by digest in your registry mirror (FROM python:3.11.14-slim-bookworm@sha256:...).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY image/requirements.lock image/requirements.lock
# Wheels for the locked dependencies, then for the package itself (no dependency resolution).
RUN pip wheel --no-cache-dir --wheel-dir /wheels -r image/requirements.lock
COPY pyproject.toml README.md ./
COPY workload ./workload
COPY workflows ./workflows
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    WORKLOAD_ROOT=/mnt/vol
COPY --from=build /wheels /wheels
COPY image/requirements.lock /tmp/requirements.lock
RUN pip install --no-cache-dir --no-index --find-links /wheels -r /tmp/requirements.lock \
 && pip install --no-cache-dir --no-index --no-deps --find-links /wheels workload \
 && rm -rf /wheels /tmp/requirements.lock \
 && useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin workload
WORKDIR /app
COPY image/process.py image/merge.py ./
USER 10001:10001
CMD ["python3", "process.py", "--help"]
