//! systemd `--user` units for the host plane (`host.os = "linux"`):
//! `infra/host/systemd/alembic-<project>--<workload>.service`, plus a `.timer` for scheduled
//! jobs. The unit name carries the project so two projects on one machine never share a unit;
//! the separator is `--` because neither a project nor a workload name may contain it (both
//! are slugs with single hyphens), so `alembic-a-b--c` and `alembic-a--b-c` stay distinct.
//!
//! Units have no serializer crate, so this is a small typed writer ([`Unit`]) with systemd's own
//! quoting: `ExecStart=` words are double-quoted with `\` and `"` escaped, `%` doubled (it starts
//! a specifier) and `$` doubled (it starts an environment variable expansion); `Environment=`
//! assignments are quoted the same way minus `$`, which it does not expand.
//!
//! Every workload runs through its project's launcher (`crate::launcher`) at
//! `%h/.config/alembic/<project>/bin/alembic-launch` (`%h` is the home-directory specifier);
//! secrets are passed by name and read from the project's mode-0600 secrets file, output goes
//! to the journal. A workload's `bind`/`port` reach it as `HOST`/`PORT` (`Environment=`) and
//! as `{bind}`/`{port}` substituted in its command.
//!
//! Hardening: `NoNewPrivileges=yes` and `UMask=0077` work in any user manager. `PrivateTmp=` and
//! the other namespace options are left out on purpose: in a user manager they need unprivileged
//! user namespaces, and where those are disabled the unit would fail to start at all.

use std::fmt::Write as _;

use alembic_config::{HostOs, Plane, Topology, Workload};

use crate::{launcher, Artifact, ArtifactKind};

/// One `Key=value` line; the value is already quoted for its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The key.
    pub key: &'static str,
    /// The value, quoted for its key.
    pub value: String,
}

/// One `[Section]` of a unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    /// `Unit`, `Service`, `Timer`, `Install`.
    pub name: &'static str,
    /// Its lines, in order.
    pub entries: Vec<Entry>,
}

/// A unit file: sections of entries, written in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unit {
    /// Its sections, in order.
    pub sections: Vec<Section>,
}

impl Unit {
    /// Start a new section.
    pub fn section(&mut self, name: &'static str) -> &mut Section {
        self.sections.push(Section {
            name,
            entries: Vec::new(),
        });
        self.sections.last_mut().expect("just pushed")
    }

    /// The unit file's text.
    pub fn to_text(&self) -> String {
        let mut out = String::from("# Rendered by alembic; do not edit.\n");
        for (i, s) in self.sections.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            let _ = writeln!(out, "[{}]", s.name);
            for e in &s.entries {
                let _ = writeln!(out, "{}={}", e.key, e.value);
            }
        }
        out
    }
}

impl Section {
    /// Add an entry whose value is already in unit syntax (a keyword, a number, a unit name).
    pub fn raw(&mut self, key: &'static str, value: impl Into<String>) -> &mut Self {
        self.entries.push(Entry {
            key,
            value: value.into(),
        });
        self
    }
}

/// Quote one word of a command line (`ExecStart=`): literal text, no specifiers, no `$VAR`.
pub fn quote_exec_word(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '%' => out.push_str("%%"),
            '$' => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Quote one `NAME=value` assignment for `Environment=` (specifiers are expanded there, `$` is not).
pub fn quote_environment(name: &str, value: &str) -> String {
    let mut out = String::with_capacity(name.len() + value.len() + 3);
    out.push('"');
    for c in name
        .chars()
        .chain(std::iter::once('='))
        .chain(value.chars())
    {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '%' => out.push_str("%%"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The unit name (without suffix) of a host workload: `alembic-<project>--<workload>`.
pub fn unit_name(t: &Topology, w: &Workload) -> String {
    unit_name_of(t, w.name.as_str())
}

fn unit_name_of(t: &Topology, workload: &str) -> String {
    format!("alembic-{}--{workload}", t.project.name)
}

/// `ExecStart=`: the project's launcher under `%h`, then the workload's command (placeholders
/// substituted), each word quoted.
pub fn exec_start(t: &Topology, w: &Workload) -> String {
    let mut words = vec![
        format!("%h/{}", launcher::install_path_in_home(t)),
        quote_exec_word("--project"),
        quote_exec_word(t.project.name.as_str()),
    ];
    if !w.secrets.is_empty() {
        words.push(quote_exec_word("--secrets"));
        let names: Vec<&str> = w.secrets.iter().map(|s| s.as_str()).collect();
        words.push(quote_exec_word(&names.join(",")));
    }
    words.push(quote_exec_word("--"));
    words.extend(launcher::command(w).iter().map(|c| quote_exec_word(c)));
    words.join(" ")
}

/// One service (and timer for a job) per host workload (Linux hosts only).
pub fn render(t: &Topology) -> Vec<Artifact> {
    if t.host.os != HostOs::Linux {
        return Vec::new();
    }
    let mut out = Vec::new();
    for w in t.on_plane(Plane::Host) {
        let name = unit_name(t, w);
        out.push(Artifact::new(
            format!("infra/host/systemd/{name}.service"),
            service(t, w).to_text(),
            Plane::Host,
            ArtifactKind::SystemdUnit,
        ));
        if let Some(timer) = timer(t, w) {
            out.push(Artifact::new(
                format!("infra/host/systemd/{name}.timer"),
                timer.to_text(),
                Plane::Host,
                ArtifactKind::SystemdUnit,
            ));
        }
    }
    out.extend(launcher::render(t));
    out
}

fn description(t: &Topology, w: &Workload) -> String {
    // Description= expands specifiers: double any `%` (names are validated, this is belt and braces).
    format!("alembic {} host workload {}", t.project.name, w.name).replace('%', "%%")
}

/// The `.service` unit of a host workload.
pub fn service(t: &Topology, w: &Workload) -> Unit {
    let job = w.schedule.is_some();
    let mut u = Unit::default();
    let unit = u.section("Unit");
    unit.raw("Description", description(t, w));
    // Ordering among host workloads (depends_on names are validated workload names).
    for dep in &w.depends_on {
        if t.workload(dep.as_str())
            .is_some_and(|d| d.plane == Plane::Host)
        {
            let dep_unit = format!("{}.service", unit_name_of(t, dep.as_str()));
            unit.raw("Wants", dep_unit.clone());
            unit.raw("After", dep_unit);
        }
    }
    let svc = u.section("Service");
    svc.raw("Type", if job { "oneshot" } else { "exec" });
    svc.raw("ExecStart", exec_start(t, w));
    for (k, v) in launcher::environment(w) {
        svc.raw("Environment", quote_environment(&k, &v));
    }
    if w.keep_alive && !job {
        svc.raw("Restart", "always");
        svc.raw("RestartSec", "2s");
    }
    svc.raw("NoNewPrivileges", "yes");
    svc.raw("UMask", "0077");
    // A timer starts a job; only services that are not timer-driven are enabled themselves.
    if !job {
        u.section("Install").raw("WantedBy", "default.target");
    }
    u
}

/// The `.timer` unit of a scheduled host workload.
pub fn timer(t: &Topology, w: &Workload) -> Option<Unit> {
    let schedule = w.schedule.as_ref()?;
    let mut u = Unit::default();
    u.section("Unit").raw("Description", description(t, w));
    u.section("Timer")
        .raw("OnCalendar", schedule.on_calendar())
        .raw("Persistent", "true")
        .raw("Unit", format!("{}.service", unit_name(t, w)));
    u.section("Install").raw("WantedBy", "timers.target");
    Some(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_words_escape_specifiers_variables_and_quotes() {
        assert_eq!(quote_exec_word("plain"), "\"plain\"");
        assert_eq!(quote_exec_word("100%"), "\"100%%\"");
        assert_eq!(quote_exec_word("$HOME"), "\"$$HOME\"");
        assert_eq!(quote_exec_word("a \"b\" \\c"), "\"a \\\"b\\\" \\\\c\"");
        assert_eq!(quote_exec_word(""), "\"\"");
    }

    #[test]
    fn environment_keeps_dollar_and_doubles_percent() {
        assert_eq!(quote_environment("A", "x $y 5%"), "\"A=x $y 5%%\"");
    }
}
