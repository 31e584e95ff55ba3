//! Progress of an apply, as views: one [`Progress`] trait fed [`Event`]s, a human view (stderr:
//! a line per step with its elapsed time; a `…` line when a step starts on a terminal) and a JSON
//! view (one object per line on stdout). The deploy code never prints.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::ops::Op;

/// What a view hears while a plan is applied: steps starting and ending, ops, warnings, notes.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A step began.
    Start {
        /// The step's label.
        step: String,
    },
    /// A step ended.
    End {
        /// The step's label.
        step: String,
        /// Whether it succeeded.
        ok: bool,
        /// How long it took, in milliseconds.
        elapsed_ms: u64,
        /// Why it failed, or what it found (empty: nothing to add).
        #[serde(skip_serializing_if = "String::is_empty")]
        detail: String,
    },
    /// An operation is about to run (exactly what, and whether it changes anything).
    Op {
        /// The stage the op belongs to.
        plane: crate::stage::Stage,
        /// The op's label.
        step: String,
        /// Its command line, quoted for a POSIX shell.
        command: String,
        /// Whether it changes anything.
        mutating: bool,
    },
    /// Something went wrong but the run goes on (a kept secret, a skipped stage).
    Warning {
        /// What happened, names only.
        message: String,
    },
    /// Something the reader should know, shown as is (a stage's outcome, Terraform's summary).
    Info {
        /// What to show.
        message: String,
    },
}

impl Event {
    /// The [`Event::Op`] announcing `op`.
    pub fn op(op: &Op) -> Event {
        Event::Op {
            plane: op.plane,
            step: op.step.clone(),
            command: op.to_string(),
            mutating: op.mutating,
        }
    }
}

/// A view of a run: the human lines or the JSON events (`Human`, `Json`), or a recorder (`Record`).
pub trait Progress {
    /// Show (or keep) one event.
    fn event(&mut self, e: Event);
}

/// Times steps and reports them through a [`Progress`] view.
pub(crate) struct Steps<'a> {
    view: &'a mut dyn Progress,
    current: Option<(String, Instant)>,
}

impl<'a> Steps<'a> {
    pub(crate) fn new(view: &'a mut dyn Progress) -> Self {
        Steps {
            view,
            current: None,
        }
    }

    pub(crate) fn start(&mut self, step: impl Into<String>) {
        let step = step.into();
        self.view.event(Event::Start { step: step.clone() });
        self.current = Some((step, Instant::now()));
    }

    pub(crate) fn end(&mut self, ok: bool, detail: impl Into<String>) {
        if let Some((step, t)) = self.current.take() {
            self.view.event(Event::End {
                step,
                ok,
                elapsed_ms: t.elapsed().as_millis() as u64,
                detail: detail.into(),
            });
        }
    }

    pub(crate) fn op(&mut self, op: &Op) {
        self.view.event(Event::op(op));
    }

    pub(crate) fn warn(&mut self, message: impl Into<String>) {
        self.view.event(Event::Warning {
            message: message.into(),
        });
    }
}

/// Human lines on stderr. On a terminal a step's start is shown too, so a slow step is visible
/// while it runs; elsewhere only finished steps (one line each, grep-friendly).
pub struct Human {
    tty: bool,
    /// Show every op's command line (dry runs and `--verbose`-like use).
    pub show_ops: bool,
}

impl Human {
    /// A human view for stderr, showing starts only on a terminal and no ops.
    pub fn new() -> Human {
        Human {
            tty: std::io::stderr().is_terminal(),
            show_ops: false,
        }
    }
}

impl Default for Human {
    fn default() -> Self {
        Human::new()
    }
}

fn secs(ms: u64) -> String {
    format!("{:.1}s", Duration::from_millis(ms).as_secs_f64())
}

impl Progress for Human {
    fn event(&mut self, e: Event) {
        let mut err = std::io::stderr().lock();
        let _ = match e {
            Event::Start { step } if self.tty => writeln!(err, "  … {step}"),
            Event::Start { .. } => Ok(()),
            Event::End {
                step,
                ok,
                elapsed_ms,
                detail,
            } => {
                let mark = match (ok, self.tty) {
                    (true, true) => "  ✓",
                    (false, true) => "  ✗",
                    (true, false) => "ok  ",
                    (false, false) => "FAIL",
                };
                let sep = if detail.is_empty() { "" } else { ": " };
                writeln!(err, "{mark} {step} ({}){sep}{detail}", secs(elapsed_ms))
            }
            Event::Op { command, .. } if self.show_ops => writeln!(err, "    $ {command}"),
            Event::Op { .. } => Ok(()),
            Event::Warning { message } => writeln!(err, "warning: {message}"),
            Event::Info { message } => writeln!(err, "{message}"),
        };
    }
}

/// One JSON object per line on stdout.
pub struct Json;

impl Progress for Json {
    fn event(&mut self, e: Event) {
        let v = serde_json::to_value(&e).expect("events serialise");
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{v}");
        let _ = out.flush();
    }
}

/// Collects events (tests, and callers that want a record).
#[derive(Default)]
pub struct Record(pub Vec<Event>);

impl Progress for Record {
    fn event(&mut self, e: Event) {
        self.0.push(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_timed_and_serialised_as_tagged_objects() {
        let mut rec = Record::default();
        let mut s = Steps::new(&mut rec);
        s.start("upload");
        s.op(&Op::new(
            crate::stage::Stage::Droplet,
            "upload",
            "ssh",
            vec!["h".into()],
        ));
        s.end(true, "");
        s.warn("expired lease taken over");
        let json: Vec<String> = rec
            .0
            .iter()
            .map(|e| serde_json::to_string(e).unwrap())
            .collect();
        assert_eq!(json[0], r#"{"event":"start","step":"upload"}"#);
        assert!(json[1].contains(r#""event":"op""#) && json[1].contains(r#""mutating":true"#));
        assert!(json[2].starts_with(r#"{"event":"end","step":"upload","ok":true,"elapsed_ms":"#));
        assert_eq!(
            json[3],
            r#"{"event":"warning","message":"expired lease taken over"}"#
        );
    }
}
