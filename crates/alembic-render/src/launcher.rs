//! The host secrets launcher, `infra/host/bin/alembic-launch`: a POSIX sh script every host
//! workload runs through (launchd plists and systemd units both start it), plus what the host
//! renderers share about a host workload: where its project's files live, its command with
//! `{bind}`/`{port}` substituted, and its environment with `HOST`/`PORT`.
//!
//! Why a launcher: secret values must never be written into a plist or a unit, and launchd
//! cannot read an environment file. The launcher reads `NAME=value` lines from a mode-0600 file
//! owned by the user (`$HOME/.config/alembic/<project>/secrets.env` for `--project <project>`,
//! or `$ALEMBIC_SECRETS_FILE`), exports only the names passed with `--secrets`, optionally sends
//! output to `$HOME/<--log path>` (launchd does not expand `~` or `$HOME`, so the plist cannot
//! name the log file itself), then `exec`s the workload. Host apply installs it per project at
//! `~/.config/alembic/<project>/bin/alembic-launch`, so two projects (or two alembic versions)
//! never share a launcher or a secrets file.
//!
//! The file is static text (nothing from the topology goes into it), so it is a constant here
//! rather than a template; `shellcheck` and a run with a canary secret prove it in the tests.

use std::collections::BTreeMap;

use alembic_config::{Plane, Topology, Workload};

use crate::{Artifact, ArtifactKind};

/// Where the launcher artifact is rendered, relative to the output root.
pub const PATH: &str = "infra/host/bin/alembic-launch";

/// In a host workload's `command`, replaced by its `bind` address at render time.
pub const BIND_PLACEHOLDER: &str = "{bind}";
/// In a host workload's `command`, replaced by its `port` at render time.
pub const PORT_PLACEHOLDER: &str = "{port}";

/// The directory of one project's host files (launcher, secrets file), relative to `$HOME`.
/// Project names are validated slugs (`[a-z][a-z0-9-]*`), safe as a path segment.
pub fn project_dir_in_home(t: &Topology) -> String {
    format!(".config/alembic/{}", t.project.name)
}

/// Where host apply installs the launcher, relative to `$HOME`.
pub fn install_path_in_home(t: &Topology) -> String {
    format!("{}/bin/alembic-launch", project_dir_in_home(t))
}

/// The project's secrets file the launcher reads by default, relative to `$HOME`.
pub fn secrets_file_in_home(t: &Topology) -> String {
    format!("{}/secrets.env", project_dir_in_home(t))
}

/// A host workload's command as it is started: `{bind}` and `{port}` replaced by the
/// workload's values. Only those two exact tokens are replaced (no escape syntax, so commands
/// that use braces for their own purposes, like `{{.Names}}`, pass unchanged); a placeholder
/// whose field is not set stays as written (policy EXP010 reports it).
pub fn command(w: &Workload) -> Vec<String> {
    let bind = w.bind.map(|b| b.to_string());
    let port = w.port.map(|p| p.to_string());
    w.command
        .iter()
        .map(|c| {
            let mut s = c.as_str().to_owned();
            if let Some(b) = &bind {
                s = s.replace(BIND_PLACEHOLDER, b);
            }
            if let Some(p) = &port {
                s = s.replace(PORT_PLACEHOLDER, p);
            }
            s
        })
        .collect()
}

/// A host workload's plain environment: its `env`, then `HOST` = `bind` and `PORT` = `port`
/// when set. The declared values win over an `env` entry of the same name (EXP010 reports the
/// conflict), so what the process is told always matches what policy proved.
pub fn environment(w: &Workload) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = w
        .env
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.as_str().to_owned()))
        .collect();
    if let Some(b) = w.bind {
        env.insert("HOST".to_owned(), b.to_string());
    }
    if let Some(p) = w.port {
        env.insert("PORT".to_owned(), p.to_string());
    }
    env
}

/// The script. Values read from the secrets file are never echoed: error messages name the
/// file and the variable names only.
pub const SCRIPT: &str = r#"#!/bin/sh
# alembic-launch: start one host workload with only the secrets it declares.
# Rendered by alembic; installed by `alembic apply --plane host`. Do not edit.
#
# usage: alembic-launch [--project NAME] [--log PATH] [--secrets NAME[,NAME...]] -- COMMAND [ARG...]
#
#   --project  the project whose secrets file is read by default:
#              $HOME/.config/alembic/NAME/secrets.env
#   --secrets  names to export from the secrets file ($ALEMBIC_SECRETS_FILE, default the
#              project's): NAME=value lines, '#' comments; the file must be a regular file
#              owned by the current user with mode 0600.
#   --log      append stdout and stderr to PATH (relative paths are under $HOME).
set -eu

die() {
    printf 'alembic-launch: %s\n' "$1" >&2
    exit 78
}

usage() {
    die "usage: alembic-launch [--project NAME] [--log PATH] [--secrets NAME[,NAME...]] -- COMMAND [ARG...]"
}

log=
secrets=
project=
while [ "$#" -gt 0 ]; do
    case $1 in
        --project)
            [ "$#" -ge 2 ] || usage
            project=$2
            shift 2
            ;;
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

# A project name becomes a path segment: the same slug rule as alembic.toml's project.name.
case $project in
    '' | [a-z]*) ;;
    *) die "invalid project name '$project'" ;;
esac
case $project in
    *[!a-z0-9-]* | *- | *--*) die "invalid project name '$project'" ;;
esac

if [ -n "$secrets" ]; then
    if [ -n "${ALEMBIC_SECRETS_FILE:-}" ]; then
        file=$ALEMBIC_SECRETS_FILE
    elif [ -n "$project" ]; then
        file=${HOME:?HOME is not set}/.config/alembic/$project/secrets.env
    else
        die "--secrets needs --project (or ALEMBIC_SECRETS_FILE) to find the secrets file"
    fi
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
