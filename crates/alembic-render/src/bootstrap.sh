# The steps. Each one checks before it changes and reports one line:
#   alembic-bootstrap: STEP changed|unchanged [detail]
# and the last line is `alembic-bootstrap: done changed=N` (or `failed STEP: reason`, exit 1).
# Everything runs inside main(), called on the last line with stdin from /dev/null: the whole
# script is read before anything runs (a truncated upload runs nothing), and apt/dpkg cannot
# swallow the rest of a script piped into `sh -s`.

export DEBIAN_FRONTEND=noninteractive
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
umask 022

changed=0

report() {
  # $1 step, $2 changed|unchanged, $3 optional detail
  if [ "$2" = changed ]; then
    changed=$((changed + 1))
  fi
  printf 'alembic-bootstrap: %s %s%s\n' "$1" "$2" "${3:+ $3}"
}

fail() {
  printf 'alembic-bootstrap: failed %s: %s\n' "$1" "$2"
  exit 1
}

apt_get() {
  # Waits for another apt (a cloud image's first-boot apt-daily) instead of failing on its lock.
  apt-get -q -y -o DPkg::Lock::Timeout=600 \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@"
}

is_installed() {
  [ "$(dpkg-query -W -f '${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

step_hostname() {
  # sudo (the sudo step, `bootstrap --user`) looks the host's own name up; a server whose name
  # is nowhere in /etc/hosts warns "unable to resolve host" and may wait on DNS first. Debian's
  # convention: 127.0.1.1 names the host.
  h=$(hostname 2>/dev/null || true)
  if [ -z "$h" ] || getent hosts "$h" >/dev/null 2>&1; then
    report hostname unchanged
    return
  fi
  printf '127.0.1.1\t%s\n' "$h" >>/etc/hosts || fail hostname "cannot write /etc/hosts"
  report hostname changed "$h added to /etc/hosts"
}

step_packages() {
  [ -r /etc/os-release ] || fail packages "/etc/os-release is missing: unknown distribution"
  # os-release is a shell fragment by specification; read it in a subshell.
  # shellcheck disable=SC1091 # the target's file, not part of this script
  os=$(. /etc/os-release && printf '%s %s' "${ID:-unknown}" "${VERSION_ID:-unknown}")
  # Installed without their Recommends (git, perl, criu, buildx, needrestart, ...: nothing the
  # deploy uses, and minutes of unpacking on a small droplet); what Docker needs of them is
  # named instead: apparmor (on an AppArmor kernel, Docker cannot start containers without
  # apparmor_parser), ca-certificates (registry pulls over TLS) and, on Debian, docker-cli
  # (the `docker` command is only a Recommends of docker.io there). curl: the deploy reads each
  # workload's own health answer on the droplet (a minimal image may lack it; without it a
  # failing release is only caught by the probe timeout).
  case "$os" in
    "ubuntu 24.04") pkgs="docker.io docker-compose-v2" ;;
    "debian 13") pkgs="docker.io docker-cli docker-compose" ;;
    *) fail packages "unsupported distribution '$os' (supported: Ubuntu 24.04, Debian 13)" ;;
  esac
  pkgs="$pkgs apparmor ca-certificates unattended-upgrades sudo curl"
  missing=""
  for p in $pkgs; do
    is_installed "$p" || missing="$missing $p"
  done
  if [ -z "$missing" ]; then
    report packages unchanged "$os"
    return
  fi
  # apt's output goes to a log; on failure its last lines say why.
  log=/var/log/alembic-bootstrap-apt.log
  if ! apt_get update >"$log" 2>&1; then
    tail -n 20 "$log"
    fail packages "apt-get update failed (see $log)"
  fi
  # shellcheck disable=SC2086 # word splitting of the package list is intended
  if ! apt_get install --no-install-recommends $missing >>"$log" 2>&1; then
    tail -n 20 "$log"
    fail packages "apt-get install$missing failed (see $log)"
  fi
  report packages changed "$os: installed$missing"
}

step_docker_service() {
  if systemctl is-enabled --quiet docker 2>/dev/null && systemctl is-active --quiet docker; then
    report docker-service unchanged
    return
  fi
  systemctl enable --now docker >/dev/null 2>&1 || fail docker-service "systemctl enable --now docker failed"
  report docker-service changed
}

step_log_rotation() {
  f=/etc/docker/daemon.json
  if [ -f "$f" ] && grep -q '"max-size"' "$f" && grep -q '"max-file"' "$f"; then
    report docker-log-rotation unchanged
    return
  fi
  mkdir -p /etc/docker
  new="$f.alembic-new"
  if [ -s "$f" ]; then
    # Merge into the existing settings rather than replace them; keep any value already set.
    # python3 is on every cloud image (cloud-init needs it).
    command -v python3 >/dev/null 2>&1 ||
      fail docker-log-rotation "$f exists and python3 is missing to merge it"
    python3 - "$f" "$new" <<'PY' || fail docker-log-rotation "cannot merge $f (not a JSON object?)"
import json, sys
src, dst = sys.argv[1], sys.argv[2]
with open(src) as fh:
    conf = json.load(fh)
if not isinstance(conf, dict):
    sys.exit(1)
driver = conf.get("log-driver", "json-file")
if driver not in ("json-file", "local"):
    sys.stderr.write("log-driver %s rotates on its own terms\n" % driver)
    sys.exit(1)
opts = conf.setdefault("log-opts", {})
opts.setdefault("max-size", "10m")
opts.setdefault("max-file", "3")
with open(dst, "w") as fh:
    json.dump(conf, fh, indent=2)
    fh.write("\n")
PY
  else
    cat >"$new" <<'JSON'
{
  "log-driver": "json-file",
  "log-opts": {
    "max-size": "10m",
    "max-file": "3"
  }
}
JSON
  fi
  if command -v dockerd >/dev/null 2>&1 && ! dockerd --validate --config-file "$new" >/dev/null 2>&1; then
    rm -f "$new"
    fail docker-log-rotation "dockerd --validate rejects the merged $f"
  fi
  chmod 0644 "$new"
  mv -f "$new" "$f"
  # Log options are read at daemon start only; containers with a restart policy come back.
  if systemctl is-active --quiet docker 2>/dev/null; then
    systemctl restart docker || fail docker-log-rotation "docker did not restart with the new $f"
  fi
  report docker-log-rotation changed "max-size 10m, max-file 3"
}

step_user() {
  if id -u "$ALEMBIC_USER" >/dev/null 2>&1; then
    report user unchanged "$ALEMBIC_USER"
    return
  fi
  useradd --create-home --user-group --shell /bin/bash "$ALEMBIC_USER" ||
    fail user "useradd $ALEMBIC_USER failed"
  # No password at all ('*'), rather than a locked one ('!'), which sshd may refuse.
  usermod -p '*' "$ALEMBIC_USER"
  report user changed "$ALEMBIC_USER"
}

step_authorized_keys() {
  home=$(getent passwd "$ALEMBIC_USER" | cut -d: -f6)
  group=$(id -gn "$ALEMBIC_USER")
  [ -n "$home" ] && [ -d "$home" ] || fail authorized-keys "$ALEMBIC_USER has no home directory"
  dir="$home/.ssh"
  ak="$dir/authorized_keys"
  touched=0
  if [ ! -d "$dir" ]; then
    install -d -m 0700 -o "$ALEMBIC_USER" -g "$group" "$dir"
    touched=1
  fi
  if [ ! -f "$ak" ]; then
    install -m 0600 -o "$ALEMBIC_USER" -g "$group" /dev/null "$ak"
    touched=1
  fi
  # Keys already there (added by hand) stay; only the configured ones that are missing are added.
  missing=$(printf '%s\n' "$ALEMBIC_AUTHORIZED_KEYS" | grep -vxF -f "$ak" || true)
  if [ -n "$missing" ]; then
    printf '%s\n' "$missing" >>"$ak"
    touched=1
  fi
  if [ "$(stat -c '%U %a' "$dir")" != "$ALEMBIC_USER 700" ] ||
    [ "$(stat -c '%U %a' "$ak")" != "$ALEMBIC_USER 600" ]; then
    chown "$ALEMBIC_USER:$group" "$dir" "$ak"
    chmod 0700 "$dir"
    chmod 0600 "$ak"
    touched=1
  fi
  # sshd is hardened next: without a key here, nobody could log in afterwards.
  [ -s "$ak" ] || fail authorized-keys "no public key for $ALEMBIC_USER: set droplet.authorized_keys"
  if [ "$touched" = 1 ]; then
    report authorized-keys changed
  else
    report authorized-keys unchanged
  fi
}

step_docker_group() {
  if id -nG "$ALEMBIC_USER" | tr ' ' '\n' | grep -qx docker; then
    report docker-group unchanged
    return
  fi
  usermod -aG docker "$ALEMBIC_USER" || fail docker-group "usermod -aG docker failed"
  report docker-group changed "$ALEMBIC_USER may run docker (root-equivalent)"
}

step_sudo() {
  # Later runs of `alembic bootstrap --user $ALEMBIC_USER` need root; the docker group already
  # makes this user root-equivalent, so passwordless sudo gives nothing away.
  f=/etc/sudoers.d/alembic
  want="$ALEMBIC_USER ALL=(ALL) NOPASSWD:ALL"
  if [ -f "$f" ] && [ "$(cat "$f")" = "$want" ]; then
    report sudo unchanged
    return
  fi
  new=/etc/sudoers.d/.alembic-new
  printf '%s\n' "$want" >"$new"
  chmod 0440 "$new"
  if ! visudo -c -q -f "$new" >/dev/null; then
    rm -f "$new"
    fail sudo "visudo rejects the sudoers entry"
  fi
  mv -f "$new" "$f"
  report sudo changed "$ALEMBIC_USER"
}

step_root_dir() {
  group=$(id -gn "$ALEMBIC_USER")
  if [ -d "$ALEMBIC_ROOT" ] && [ "$(stat -c %U "$ALEMBIC_ROOT")" = "$ALEMBIC_USER" ]; then
    report root-dir unchanged "$ALEMBIC_ROOT"
    return
  fi
  if [ -d "$ALEMBIC_ROOT" ]; then
    chown "$ALEMBIC_USER:$group" "$ALEMBIC_ROOT"
  else
    install -d -m 0750 -o "$ALEMBIC_USER" -g "$group" "$ALEMBIC_ROOT"
  fi
  report root-dir changed "$ALEMBIC_ROOT"
}

sshd_effective_ok() {
  eff=$(/usr/sbin/sshd -T 2>/dev/null) || return 1
  printf '%s\n' "$eff" | grep -qx 'passwordauthentication no' &&
    printf '%s\n' "$eff" | grep -qx 'kbdinteractiveauthentication no' &&
    {
      printf '%s\n' "$eff" | grep -qx "permitrootlogin $ALEMBIC_PERMIT_ROOT_LOGIN" ||
        # sshd -T may print the older name of prohibit-password
        { [ "$ALEMBIC_PERMIT_ROOT_LOGIN" = prohibit-password ] &&
          printf '%s\n' "$eff" | grep -qx 'permitrootlogin without-password'; }
    }
}

step_sshd() {
  d=/etc/ssh/sshd_config.d
  # 00-: sshd keeps the first value it reads, so this file must sort before any other drop-in
  # (cloud-init writes 50-cloud-init.conf, sometimes with PasswordAuthentication yes).
  f="$d/00-alembic.conf"
  want="# Written by alembic bootstrap: keys only, no root login.
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin $ALEMBIC_PERMIT_ROOT_LOGIN"
  # sshd -t/-T refuse to run without the privilege separation directory.
  [ -d /run/sshd ] || install -d -m 0755 /run/sshd
  if [ -f "$f" ] && [ "$(cat "$f")" = "$want" ] && sshd_effective_ok; then
    report sshd unchanged
    return
  fi
  mkdir -p "$d"
  grep -qi '^[[:space:]]*Include[[:space:]]*/etc/ssh/sshd_config.d/' /etc/ssh/sshd_config ||
    fail sshd "/etc/ssh/sshd_config does not include $d"
  old="$d/.00-alembic.conf.old"
  rm -f "$old"
  [ -f "$f" ] && cp -p "$f" "$old"
  printf '%s\n' "$want" >"$d/.00-alembic.conf.new"
  chmod 0644 "$d/.00-alembic.conf.new"
  mv -f "$d/.00-alembic.conf.new" "$f"
  if ! /usr/sbin/sshd -t || ! sshd_effective_ok; then
    # Put back what was there so the running sshd and the next reload keep working.
    if [ -f "$old" ]; then mv -f "$old" "$f"; else rm -f "$f"; fi
    fail sshd "sshd -t / sshd -T do not confirm the hardening; $f left as it was"
  fi
  rm -f "$old"
  # A reload re-reads the configuration in the listener only: open sessions (this one) stay.
  if [ -d /run/systemd/system ]; then
    systemctl try-reload-or-restart ssh.service || fail sshd "systemctl reload ssh failed"
  elif [ -f /run/sshd.pid ]; then
    kill -HUP "$(cat /run/sshd.pid)" || fail sshd "cannot signal sshd to reload"
  fi
  # The reload re-executes the listener; until it is back, new connections are reset. Return
  # only once it answers again (bounded), so the first login after the bootstrap does not race
  # the reload.
  port=$(/usr/sbin/sshd -T 2>/dev/null | awk '$1 == "port" {print $2; exit}')
  sleep 2
  i=0
  while [ "$i" -lt 30 ] && [ -z "$(ssh-keyscan -T 2 -p "${port:-22}" 127.0.0.1 2>/dev/null)" ]; do
    sleep 1
    i=$((i + 1))
  done
  report sshd changed "PasswordAuthentication no, KbdInteractiveAuthentication no, PermitRootLogin $ALEMBIC_PERMIT_ROOT_LOGIN"
}

step_unattended_upgrades() {
  f=/etc/apt/apt.conf.d/20auto-upgrades
  want='APT::Periodic::Update-Package-Lists "1";
APT::Periodic::Unattended-Upgrade "1";'
  if [ -f "$f" ] && [ "$(cat "$f")" = "$want" ]; then
    report unattended-upgrades unchanged
    return
  fi
  printf '%s\n' "$want" >"$f.alembic-new"
  chmod 0644 "$f.alembic-new"
  mv -f "$f.alembic-new" "$f"
  report unattended-upgrades changed "security updates installed daily"
}

main() {
  [ "$(id -u)" = 0 ] || fail start "must run as root (connect as root, or a sudo user with --user)"
  # The host's own name, then the user and its keys: it can log in (and `cloud-init status
  # --wait`) while the packages install.
  step_hostname
  step_user
  step_authorized_keys
  step_packages
  step_docker_service
  step_log_rotation
  step_docker_group
  step_sudo
  step_root_dir
  step_sshd
  step_unattended_upgrades
  printf 'alembic-bootstrap: done changed=%s\n' "$changed"
}

main </dev/null
