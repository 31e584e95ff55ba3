//! How each pinned image reaches the droplet: checked there by ID, then shipped over ssh
//! (`docker save | docker load`) or pulled by digest.

use super::*;
use crate::images::{droplet_tag, short_id, Pin, Source};

/// What the droplet has under an image's pinned name: prints its ID, or nothing.
pub(crate) const HAVE: &str = r#"docker image inspect --format '{{.Id}}' "$1" 2>/dev/null || true"#;
/// Load an image archive from stdin and name it `$2`; `$1` is the ID it must have.
pub(crate) const LOAD: &str = r#"set -e
docker load -q >/dev/null
docker tag "$1" "$2"
docker image inspect --format '{{.Id}}' "$2""#;
/// Pull by digest (`$1`), then check what arrived is that digest.
pub(crate) const PULL: &str = r#"set -e
docker pull -q "$1" >/dev/null
docker image inspect --format '{{.Id}}' "$1""#;

/// How one pinned image reaches the droplet.
#[derive(Clone, Debug)]
pub(crate) struct Delivery {
    pub pin: Pin,
    /// Read-only: the ID the droplet has under the pinned name (ssh delivery only).
    pub have: Option<Op>,
    /// The ops that deliver it (run only when `have` does not answer the pinned ID): a push
    /// here, then the pull or the piped `docker save | ssh docker load`.
    pub send: Vec<Op>,
}

impl Delivery {
    pub(crate) fn ops(&self) -> Vec<Op> {
        self.have.iter().chain(&self.send).cloned().collect()
    }
}

/// The delivery of each pin to `target`.
pub(crate) fn deliveries(target: &Target, pins: &[Pin]) -> Vec<Delivery> {
    pins.iter()
        .map(|p| {
            let w = &p.workload;
            match &p.source {
                Source::Built { id, .. } => {
                    let name = droplet_tag(&target.project, w, id);
                    let have = target
                        .ssh
                        .script(
                            PLANE,
                            &format!("check image of {w} on the droplet"),
                            HAVE,
                            std::slice::from_ref(&name),
                        )
                        .read_only();
                    let save = Op::new(
                        PLANE,
                        format!("save image of {w}"),
                        "docker",
                        vec!["save".into(), id.clone()],
                    )
                    .read_only();
                    let load = target
                        .ssh
                        .script(
                            PLANE,
                            &format!("send image of {w}"),
                            LOAD,
                            &[id.clone(), name],
                        )
                        .with_stdin(Stdin::Pipe {
                            from: Box::new(save),
                        });
                    Delivery {
                        pin: p.clone(),
                        have: Some(have),
                        send: vec![load],
                    }
                }
                Source::Given { .. } => Delivery {
                    pin: p.clone(),
                    have: None,
                    send: vec![pull_op(target, w, &p.reference)],
                },
                Source::Push { id, repository, .. } => {
                    let tag = format!("{repository}:{}", short_id(id));
                    Delivery {
                        pin: p.clone(),
                        have: None,
                        send: vec![
                            Op::new(
                                PLANE,
                                format!("tag image of {w} for the registry"),
                                "docker",
                                vec!["tag".into(), id.clone(), tag.clone()],
                            ),
                            Op::new(
                                PLANE,
                                format!("push image of {w}"),
                                "docker",
                                vec!["push".into(), "-q".into(), tag],
                            ),
                            pull_op(target, w, &format!("{repository}@<digest of the push>")),
                        ],
                    }
                }
            }
        })
        .collect()
}

pub(crate) fn pull_op(target: &Target, w: &str, reference: &str) -> Op {
    target.ssh.script(
        PLANE,
        &format!("pull image of {w} by digest"),
        PULL,
        &[reference.to_owned()],
    )
}

impl Runner<'_, '_> {
    /// Deliver one pinned image to the droplet (under the lease, before the upload): an image
    /// the droplet already has under its pinned name with the same ID is not sent again. The
    /// step's detail says which, and how many bytes went over ssh.
    pub(crate) fn deliver_image(&mut self, d: &Delivery) -> Result<(), DeployError> {
        let w = d.pin.workload.clone();
        self.steps.start(format!("image of {w}"));
        let r = self.deliver(d);
        match &r {
            Ok(detail) => self.steps.end(true, detail.clone()),
            Err(e) => {
                let first = e.to_string().lines().next().unwrap_or("").to_owned();
                self.steps.end(false, first)
            }
        }
        r.map(drop)
    }

    fn deliver(&mut self, d: &Delivery) -> Result<String, DeployError> {
        let w = &d.pin.workload;
        let id = match &d.pin.source {
            Source::Built { id, .. } | Source::Push { id, .. } => id.clone(),
            Source::Given { .. } => String::new(),
        };
        if let Some(have) = &d.have {
            // Asked in a dry run too (read-only), so it takes the branch the apply would.
            let out = self.decide(have)?;
            if !id.is_empty() && out.stdout_text().trim() == id {
                return Ok(format!("image unchanged ({}), not sent", short_id(&id)));
            }
        }
        let mut last = None;
        for op in &d.send {
            let op = match (&d.pin.source, op.step.starts_with("pull image")) {
                // The digest is known once the push is done: ask the local engine for it.
                (Source::Push { repository, .. }, true) => {
                    let digest = self.pushed_digest(repository, &id)?;
                    pull_op(self.target, w, &digest)
                }
                _ => op.clone(),
            };
            last = Some(self.run_ok(&op)?);
        }
        let Some(out) = last else {
            return Ok(String::new());
        };
        let arrived = out
            .stdout_text()
            .trim()
            .lines()
            .last()
            .unwrap_or("")
            .to_owned();
        if !id.is_empty() && arrived != id && self.ex.goal == crate::exec::Goal::Apply {
            return Err(DeployError::Step {
                step: format!("deliver image of {w}"),
                detail: format!("the droplet has {arrived:?} where {id} was sent"),
            });
        }
        Ok(match &d.pin.source {
            Source::Built { .. } => format!(
                "image sent ({}): {} bytes over ssh",
                short_id(&id),
                out.piped
            ),
            Source::Push { .. } => format!("image pushed and pulled by digest ({})", short_id(&id)),
            Source::Given { .. } => format!("image pulled by digest ({})", d.pin.reference),
        })
    }

    /// `<repository>@sha256:...` as the local engine recorded it for the pushed image.
    fn pushed_digest(&mut self, repository: &str, id: &str) -> Result<String, DeployError> {
        if self.ex.goal == crate::exec::Goal::DryRun {
            return Ok(format!("{repository}@<digest of the push>"));
        }
        let op = Op::new(
            PLANE,
            "read the pushed digest",
            "docker",
            vec![
                "image".into(),
                "inspect".into(),
                "--format".into(),
                "{{range .RepoDigests}}{{println .}}{{end}}".into(),
                id.to_owned(),
            ],
        )
        .read_only();
        let out = self.run_ok(&op)?;
        out.stdout_text()
            .lines()
            .find(|l| l.starts_with(&format!("{repository}@sha256:")))
            .map(str::to_owned)
            .ok_or_else(|| DeployError::Step {
                step: format!("push to {repository}"),
                detail: "the engine recorded no digest for the push".into(),
            })
    }
}
