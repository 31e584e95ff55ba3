//! The host secrets launcher, `infra/host/bin/alembic-launch`: a POSIX sh script every host
//! workload runs through (launchd plists and systemd units both start it).
//!
//! Why a launcher: secret values must never be written into a plist or a unit, and launchd
//! cannot read an environment file. The launcher reads `NAME=value` lines from a mode-0600 file
//! owned by the user (`$HOME/.config/alembic/secrets.env`, or `$ALEMBIC_SECRETS_FILE`), exports
//! only the names passed with `--secrets`, optionally sends output to `$HOME/<--log path>`
//! (launchd does not expand `~` or `$HOME`, so the plist cannot name the log file itself), then
//! `exec`s the workload. Host apply installs it at `~/.config/alembic/bin/alembic-launch`.
//!
//! The file is static text (nothing from the topology goes into it), so it is a constant here
//! rather than a template; `shellcheck` and a run with a canary secret prove it in the tests.

use alembic_config::{Plane, Topology};

use crate::{Artifact, ArtifactKind};

/// Where the launcher artifact is rendered, relative to the output root.
pub const PATH: &str = "infra/host/bin/alembic-launch";

/// Where host apply installs it, relative to `$HOME`.
pub const INSTALL_PATH_IN_HOME: &str = ".config/alembic/bin/alembic-launch";

/// The script. Values read from the secrets file are never echoed: error messages name the
/// file and the variable names only.
pub const SCRIPT: &str = r#"#!/bin/sh
# alembic-launch: start one host workload with only the secrets it declares.
# Rendered by alembic; installed by `alembic apply --plane host`. Do not edit.
#
# usage: alembic-launch [--log PATH] [--secrets NAME[,NAME...]] -- COMMAND [ARG...]
#
#   --secrets  names to export from the secrets file ($ALEMBIC_SECRETS_FILE, default
#              $HOME/.config/alembic/secrets.env): NAME=value lines, '#' comments; the file
#              must be a regular file owned by the current user with mode 0600.
#   --log      append stdout and stderr to PATH (relative paths are under $HOME).
set -eu

die() {
    printf 'alembic-launch: %s\n' "$1" >&2
    exit 78
}

usage() {
    die "usage: alembic-launch [--log PATH] [--secrets NAME[,NAME...]] -- COMMAND [ARG...]"
}

log=
secrets=
while [ "$#" -gt 0 ]; do
    case $1 in
        --log)
            [ "$#" -ge 2 ] || usage
            log=$2
            shift 2
            ;;
        --secrets)
            [ "$#" -ge 2 ] || usage
            secrets=$2
            shift 2
            ;;
        --)
            shift
            break
            ;;
        *) usage ;;
    esac
done
[ "$#" -gt 0 ] || usage

valid_name() {
    case $1 in
        '' | [!A-Za-z_]* | *[!A-Za-z0-9_]*) return 1 ;;
    esac
    return 0
}

if [ -n "$secrets" ]; then
    file=${ALEMBIC_SECRETS_FILE:-${HOME:?HOME is not set}/.config/alembic/secrets.env}
    if [ -L "$file" ] || [ ! -f "$file" ]; then
        die "secrets file $file is missing or not a regular file"
    fi
    # find -perm 600 matches the permission bits exactly; -user takes the numeric uid.
    if [ -z "$(find "$file" -prune -perm 600 -user "$(id -u)")" ]; then
        die "refusing secrets file $file: it must be owned by uid $(id -u) with mode 0600 (chmod 600 '$file')"
    fi
    old_ifs=$IFS
    IFS=,
    set -f
    for name in $secrets; do
        valid_name "$name" || die "invalid secret name '$name'"
    done
    set +f
    IFS=$old_ifs
    found=,
    while IFS= read -r line || [ -n "$line" ]; do
        case $line in
            '' | '#'*) continue ;;
            *=*) ;;
            *) continue ;;
        esac
        name=${line%%=*}
        case ,$secrets, in
            *,"$name",*)
                valid_name "$name" || continue
                export "$name=${line#*=}"
                found=$found$name,
                ;;
        esac
    done <"$file"
    missing=
    old_ifs=$IFS
    IFS=,
    set -f
    for name in $secrets; do
        case $found in
            *,"$name",*) ;;
            *) missing="$missing $name" ;;
        esac
    done
    set +f
    IFS=$old_ifs
    [ -z "$missing" ] || die "secrets file $file does not set:$missing"
    unset line name found missing old_ifs file
fi

if [ -n "$log" ]; then
    case $log in
        /*) ;;
        *) log=${HOME:?HOME is not set}/$log ;;
    esac
    mkdir -p "${log%/*}"
    exec >>"$log" 2>&1
fi

exec "$@"
"#;

/// The launcher artifact, when the topology has host workloads.
pub fn render(t: &Topology) -> Option<Artifact> {
    t.on_plane(Plane::Host).next()?;
    let mut a = Artifact::new(PATH, SCRIPT, Plane::Host, ArtifactKind::Script);
    a.mode = 0o755;
    Some(a)
}
