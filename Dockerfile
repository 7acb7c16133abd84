# The one image every pod runs: the seed's `python3 process.py <file_number> <level>` and
# `python3 merge.py 0 <number>` in WORKDIR /app, as a non-root user.
#
#   docker build -t workload:0.1.0 .
#   docker run --rm -v "$PWD/data:/mnt/vol" workload:0.1.0 python3 process.py 0 1
#
# Two stages: `build` makes a virtualenv in /opt/venv from image/requirements.lock and the
# package's wheel, with a compiler for crcmod; the runtime stage is the slim base plus that
# finished virtualenv (one COPY --from), the two scripts and a user: no wheels, no pip cache,
# no compiler. image/README.md has the sizes; tests/test_image.py builds the same virtualenv
# with the same pip commands and runs the pods in it.
#
# Pin the base by digest in your registry mirror (FROM python:3.11.14-slim-bookworm@sha256:...).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# crcmod (oss2's CRC-64 of every OSS upload) ships only an sdist and, without a compiler,
# silently installs its pure-Python fallback: about 11 MB/s instead of about 300 MB/s. gcc and
# libc6-dev build its C extension; Python's own headers are already in the base image
# (/usr/local/include/python3.11; Debian's python3-dev would be another interpreter's).
# Not pinned: this stage is thrown away, and a Debian point release drops the superseded
# versions from the archive, which would break a pinned build.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
# The locked dependencies, exactly as pinned (--no-deps: the lock is the whole closure; pip
# check proves it). A venv without pip: the base image's pip installs into it.
COPY image/requirements.lock /tmp/requirements.lock
RUN python3 -m venv --without-pip /opt/venv \
 && pip --python /opt/venv/bin/python install --no-cache-dir --no-deps \
        -r /tmp/requirements.lock \
 && /opt/venv/bin/python -c "from crcmod.crcmod import _usingExtension as c; assert c, 'crcmod'"
# The package's wheel, on its own (no dependency resolution), then a check of the whole.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY workload ./workload
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /tmp/dist . \
 && pip --python /opt/venv/bin/python install --no-cache-dir --no-deps /tmp/dist/workload-*.whl \
 && pip --python /opt/venv/bin/python check
# The image's command lines start in the finished environment.
WORKDIR /app
COPY image/process.py image/merge.py ./
RUN /opt/venv/bin/python process.py --help >/dev/null \
 && /opt/venv/bin/python merge.py --help >/dev/null

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    WORKLOAD_ROOT=/mnt/vol
RUN useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin workload
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY image/process.py image/merge.py ./
USER 10001:10001
CMD ["python3", "process.py", "--help"]
