#!/usr/bin/env bash
# The main job, on the embedded default topology: install the real checkers, build alembic,
# validate + check, render every artifact into a temp dir and run each real checker on it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/install-tools.sh
export PATH="$root/.tools/bin:$PATH"
export TF_CLI_CONFIG_FILE=/dev/null CHECKPOINT_DISABLE=1
cargo build --release --locked -q -p alembic-infra
alembic="$root/target/release/alembic"
out=$(mktemp -d "${TMPDIR:-/tmp}/alembic-demo.XXXXXX")
work=$(mktemp -d "${TMPDIR:-/tmp}/alembic-demo-cwd.XXXXXX")
cd "$work" # no alembic.toml here: the embedded default topology is used

step() { printf '\n== %s\n' "$*"; }
step "alembic validate";  "$alembic" validate
step "alembic check";     "$alembic" check
step "alembic topology";  "$alembic" topology
step "alembic render --out $out"; "$alembic" render --out "$out"
step "alembic render --check (in sync)"; "$alembic" render --out "$out" --check

step "terraform fmt -check"
terraform fmt -check -recursive "$out/infra/terraform"
step "docker compose config -q"
# ${NAME:?} references need the secret names set; placeholder values, never real ones.
names=$("$alembic" secrets --json | python3 -c 'import json,sys; print(" ".join(s["name"] for s in json.load(sys.stdin)["secrets"]))')
env $(for n in $names; do printf '%s=placeholder ' "$n"; done) \
  docker compose -f "$out/infra/docker/compose.yaml" config -q
step "caddy validate + fmt"
caddy validate --adapter caddyfile --config "$out/infra/caddy/Caddyfile" 2>&1 | tail -n 1
caddy fmt --diff "$out/infra/caddy/Caddyfile" >/dev/null
step "actionlint + zizmor"
actionlint "$out"/.github/workflows/*.yml
zizmor --offline "$out/.github/workflows"
step "shellcheck (host launcher)"
shellcheck "$out/infra/host/bin/alembic-launch" && echo ok
step "plists (plistlib)"
for p in "$out"/infra/host/launchd/*.plist; do
  python3 -c 'import plistlib,sys; plistlib.load(open(sys.argv[1],"rb")); print("ok", sys.argv[1])' "$p"
done
step "alembic scan (the rendered tree)"
"$alembic" scan "$out"
printf '\nall artifacts rendered and accepted by their checkers: %s\n' "$out"
