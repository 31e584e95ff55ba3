//! The host plane's per-project secrets file, updated by merge.
//!
//! A project owns only the names its host workloads declare; the file may hold other lines (a
//! comment, a value the operator keeps there by hand) and they are kept verbatim. For each
//! managed name: the applying environment's value replaces the file's; a name the environment
//! does not set keeps the file's value (a warning names it); a name in neither is an error.
//!
//! The merge runs in the one process that also reads and writes the file: [`MERGER`], a small
//! POSIX sh script host apply installs next to the launcher (`alembic-secrets-merge`, so a plan
//! shows one short command rather than the script) and runs through the executor. It gets the environment's values on stdin through
//! [`Stdin::EnvLinesIfSet`] (names in the op, values only in the pipe), reads the old file
//! itself, writes a temp file under `umask 077` next to it, and renames it into place (atomic
//! within one directory). The values therefore never pass through a plan, an op, a transcript
//! or this process's own memory beyond the pipe. The script reports on stderr in a small line
//! protocol (`kept NAME`, `missing NAME`, `refused WHY`) that [`parse_report`] reads; it never
//! prints a value. Shell rather than Rust because only the executor may run things and read the
//! environment's values; `shellcheck` and real runs prove it in the tests.

use std::path::Path;

use crate::exec::Output;
use crate::ops::{Op, Stdin};

/// The merger's file name, installed in the project's `bin` directory next to the launcher.
pub(crate) const MERGER_NAME: &str = "alembic-secrets-merge";

/// `$1` = the secrets file, `$2` = the managed names, comma-separated; `NAME=value` lines for
/// the names the environment sets on stdin. The old file is refused when it is a symlink, not
/// a regular file, or not owned by this uid with mode 0600 (as the launcher refuses it).
/// It exits 65 when a managed secret is neither set nor in the file and 66 when the existing
/// file (or its directory) is refused; [`parse_report`] reads its report lines, not the status.
pub(crate) const MERGER: &str = r#"#!/bin/sh
# alembic-secrets-merge: update one project's host secrets file by merge.
# Installed by `alembic apply --plane host`, which runs it. Do not edit.
# usage: alembic-secrets-merge FILE NAME[,NAME...] < NAME=value lines
set -eu
umask 077
f=$1
managed=$2
refuse() {
    printf 'refused %s\n' "$1" >&2
    exit 66
}
d=${f%/*}
[ ! -L "$d" ] || refuse "$d is a symbolic link"
mkdir -p "$d"
if [ -L "$f" ]; then
    refuse "$f is a symbolic link"
fi
if [ -e "$f" ]; then
    [ -f "$f" ] || refuse "$f is not a regular file"
    uid=$(id -u)
    [ -n "$(find "$f" -prune -perm 600 -user "$uid")" ] ||
        refuse "$f must be owned by uid $uid with mode 0600"
fi
new=$f.alembic-new
tmp=$f.alembic-tmp
trap 'rm -f "$new" "$tmp"' EXIT
cat >"$new"
: >"$tmp"
# Append the environment's line for name $1 to the temp file; false when it sets no value.
emit() {
    while IFS= read -r l || [ -n "$l" ]; do
        case $l in
            "$1="*)
                printf '%s\n' "$l" >>"$tmp"
                return 0
                ;;
        esac
    done <"$new"
    return 1
}
seen=,
replaced=,
if [ -e "$f" ]; then
    while IFS= read -r line || [ -n "$line" ]; do
        name=
        case $line in
            *=*) name=${line%%=*} ;;
        esac
        case ,$managed, in
            *,"$name",*) ;;
            *)
                printf '%s\n' "$line" >>"$tmp"
                continue
                ;;
        esac
        case $replaced in
            # Later lines of a name already replaced would override the new value.
            *,"$name",*) continue ;;
        esac
        case $seen in
            # Kept as they were: the launcher reads the last of them, as before.
            *,"$name",*)
                printf '%s\n' "$line" >>"$tmp"
                continue
                ;;
        esac
        seen=$seen$name,
        if emit "$name"; then
            replaced=$replaced$name,
        else
            printf '%s\n' "$line" >>"$tmp"
            printf 'kept %s\n' "$name" >&2
        fi
    done <"$f"
fi
missing=
old_ifs=$IFS
IFS=,
set -f
for name in $managed; do
    case $seen in
        *,"$name",*) continue ;;
    esac
    emit "$name" || missing="$missing $name"
done
set +f
IFS=$old_ifs
if [ -n "$missing" ]; then
    for name in $missing; do
        printf 'missing %s\n' "$name" >&2
    done
    exit 65
fi
chmod 600 "$tmp"
mv -f "$tmp" "$f"
"#;

/// The op that runs the installed merger at `merger` to merge the environment's values for
/// `names` into `file`.
pub(crate) fn merge_op(
    plane: crate::stage::Stage,
    merger: &Path,
    file: &Path,
    names: &[String],
) -> Op {
    Op::new(
        plane,
        "merge host secrets file",
        "sh",
        vec![
            merger.display().to_string(),
            file.display().to_string(),
            names.join(","),
        ],
    )
    .with_stdin(Stdin::EnvLinesIfSet {
        names: names.to_vec(),
    })
}

/// What a merge run reported (names only: the script never prints a value).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct MergeReport {
    /// Managed names the environment did not set, kept from the file.
    pub kept: Vec<String>,
    /// Managed names set nowhere (the file was left untouched).
    pub missing: Vec<String>,
    /// Why the existing file was refused (the file was left untouched).
    pub refused: Option<String>,
}

/// Read the merger's stderr protocol.
pub(crate) fn parse_report(out: &Output) -> MergeReport {
    let mut r = MergeReport::default();
    for line in out.stderr_text().lines() {
        if let Some(n) = line.strip_prefix("kept ") {
            r.kept.push(n.to_owned());
        } else if let Some(n) = line.strip_prefix("missing ") {
            r.missing.push(n.to_owned());
        } else if let Some(why) = line.strip_prefix("refused ") {
            r.refused = Some(why.to_owned());
        }
    }
    r
}
