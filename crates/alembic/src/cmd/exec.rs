//! `alembic exec WORKLOAD -- CMD...`: run a command in the workload's container over the
//! deploy's ssh (`docker exec`, argv as given, no shell), its output streamed with the droplet's
//! secret values redacted. Exits with the command's own status (3 when ssh itself failed).

use alembic_deploy::daytwo;
use alembic_deploy::exec::{Executor, Goal, ProcessEnv};

use crate::cli::Global;
use crate::exit;

use super::logs::{check_workload, print_redacted, redactor};
use super::plan::{close, fail};

pub fn run(g: &Global, workload: &str, cmd: &[String]) -> i32 {
    if cmd.is_empty() {
        return fail(
            "no command given: alembic exec WORKLOAD -- CMD...",
            exit::USAGE,
        );
    }
    let (t, target) = match super::status::connect(g, "exec") {
        Ok(x) => x,
        Err(c) => return c,
    };
    if let Err(c) = check_workload(&t, workload) {
        close(&target);
        return c;
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
        Ok(255) => fail("cannot reach the droplet over ssh", exit::RUNTIME),
        Ok(n) => n,
        Err(e) => fail(&e, exit::RUNTIME),
    }
}
