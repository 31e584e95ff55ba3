//! Ctrl-C (and SIGTERM/SIGHUP) while Terraform runs. By default a signal ends alembic at once,
//! which would leave the private plan directory behind and cut Terraform off mid-write. While
//! a [`Deferred`] is held the signal is only recorded: Terraform, in the same process group,
//! receives the terminal's SIGINT itself and stops gracefully (saving its state); alembic then
//! returns through its normal error path, which removes the plan directory, and reports the
//! interruption. Outside a `Deferred` the signals keep their default action (signal-hook emulates
//! it), so the ssh and host steps stop at once as before.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

struct Flags {
    /// True outside a `Deferred`: the signal then runs its default action.
    default_action: Arc<AtomicBool>,
    /// Set by any of the signals.
    seen: Arc<AtomicBool>,
}

static FLAGS: OnceLock<Option<Flags>> = OnceLock::new();

fn flags() -> Option<&'static Flags> {
    FLAGS
        .get_or_init(|| {
            let default_action = Arc::new(AtomicBool::new(true));
            let seen = Arc::new(AtomicBool::new(false));
            for sig in [SIGINT, SIGTERM, SIGHUP] {
                // Record first: the conditional default (when armed) ends the process after.
                signal_hook::flag::register(sig, Arc::clone(&seen)).ok()?;
                signal_hook::flag::register_conditional_default(sig, Arc::clone(&default_action))
                    .ok()?;
            }
            Some(Flags {
                default_action,
                seen,
            })
        })
        .as_ref()
}

/// Signals are recorded instead of ending the process until this is dropped.
pub struct Deferred(());

/// Defer SIGINT/SIGTERM/SIGHUP for the lifetime of the returned guard.
pub fn defer() -> Deferred {
    if let Some(f) = flags() {
        f.default_action.store(false, Ordering::SeqCst);
    }
    Deferred(())
}

impl Drop for Deferred {
    fn drop(&mut self) {
        if let Some(f) = flags() {
            f.default_action.store(true, Ordering::SeqCst);
        }
    }
}

/// Whether a deferred signal arrived.
pub fn interrupted() -> bool {
    flags().is_some_and(|f| f.seen.load(Ordering::SeqCst))
}
