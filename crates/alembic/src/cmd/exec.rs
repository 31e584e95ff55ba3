//! `alembic exec WORKLOAD -- CMD...`: run a command in the workload's container over the
//! deploy's ssh (`docker exec`, argv as given, no shell), its output streamed with the droplet's
//! secret values redacted. Exits with the command's own status (3 when ssh itself failed).

use alembic_deploy::daytwo;
use alembic_deploy::exec::{Executor, Goal, ProcessEnv};

use crate::cli::Global;
use crate::exit;
use crate::view::{CmdResult, Failure, Outcome};

use super::failure;
use super::logs::{check_workload, print_redacted, redactor, unreachable};
use super::plan::close;

pub fn run(g: &Global, workload: &str, cmd: &[String]) -> CmdResult {
    if cmd.is_empty() {
        return Err(Failure::usage(
            "no_command",
            "no command given: alembic exec WORKLOAD -- CMD...",
        )
        .into());
    }
    let (t, target) = super::status::connect(g, "exec")?;
    if let Err(f) = check_workload(&t, workload) {
        close(&target);
        return Err(f.into());
    }
    let env = ProcessEnv;
    let redact = redactor(&t, &env);
    let mut ex = Executor::new(Goal::Apply, &env);
    let op = daytwo::exec_op(&target, workload, cmd);
    let status = ex.stream(&op, &mut |which, chunk| {
        print_redacted(&redact, which, chunk)
    });
    close(&target);
    match status {
        Ok(255) => Err(unreachable().into()),
        // The command's own status, its output already streamed.
        Ok(n) => Ok(Outcome::streamed(n)),
        Err(e) => Err(failure("ssh_failed", &e, exit::RUNTIME).into()),
    }
}
