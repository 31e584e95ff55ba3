//! Images of `build` workloads: built on the applying machine, pinned per release, delivered to
//! the droplet.
//!
//! - CI's deploy job names each built image as `ALEMBIC_IMAGE_<NAME>=<registry>/<name>@sha256:..`
//!   (pushed by its build job): that digest is the pin, and the droplet pulls it by digest.
//! - Otherwise `docker build` runs here (through the executor); its image ID is the pin. Without
//!   a registry the image goes over the deploy's own ssh connection (`docker save <id>` piped
//!   into `docker load` on the droplet), unless the droplet already has it: the droplet keeps
//!   each delivered image under its own name, `<project>/<workload>:pinned-<id12>`, and an image
//!   found there with the same ID is not sent again. That name differs from the build's local
//!   tag (`<project>/<workload>:<id12>`) so that a machine which both builds and runs (one
//!   engine) still tells "built" from "delivered", and it keeps every pinned image named on the
//!   droplet (never dangling, so `docker image prune` leaves rollback targets alone).
//! - With `droplet.registry` and no CI pin, the build is tagged `<registry>/<name>:<id12>` and
//!   pushed at apply time; the droplet pulls `<registry>/<name>@<digest>` (the digest the push
//!   reported).
//!
//! Every release's compose file names the pinned image (`compose::render_pinned`) and its ledger
//! entry records the pins, so a rollback (which runs the old release's own compose file) starts
//! exactly the bits that release ran, whatever a tag says now.

use std::collections::BTreeMap;
use std::path::Path;

use alembic_config::{Plane, Topology};
use serde::{Deserialize, Serialize};

use crate::error::DeployError;
use crate::stage::Stage;

const PLANE: Stage = Stage::Droplet;
use crate::exec::Executor;
use crate::ops::Op;

/// Where a pinned image comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Source {
    /// Built here from this context (relative to alembic.toml); `id` is the image ID.
    Built { context: String, id: String },
    /// Named by the applying environment (`ALEMBIC_IMAGE_<NAME>`, set by CI's deploy job).
    Given { env: String },
    /// Built here, to be pushed to the registry at apply time.
    Push {
        context: String,
        id: String,
        repository: String,
    },
}

/// One build workload's image for this release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Pin {
    pub workload: String,
    /// What compose runs: `sha256:<id>`, or `<registry>/<name>@sha256:<digest>`.
    pub reference: String,
    pub source: Source,
}

/// How an image changed against the current release's pin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageChange {
    pub workload: String,
    /// `added`, `changed` or `unchanged`.
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    pub to: String,
}

/// The short form of an image ID used in tags: the first 12 hex digits.
pub(crate) fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}

/// The build's local tag: `<project>/<workload>:<id12>`.
pub(crate) fn local_tag(project: &str, workload: &str, id: &str) -> String {
    format!("{project}/{workload}:{}", short_id(id))
}

/// The name a delivered image keeps on the droplet: `<project>/<workload>:pinned-<id12>`.
pub(crate) fn droplet_tag(project: &str, workload: &str, id: &str) -> String {
    format!("{project}/{workload}:pinned-{}", short_id(id))
}

/// `docker build -q <context>`: prints the image ID. It writes only to this machine's image
/// store (nothing deployed changes), and a plan needs the ID to say which images change, so it
/// runs as a read-only query, in dry runs too.
pub(crate) fn build_op(workload: &str, context: &Path) -> Op {
    Op::new(
        PLANE,
        format!("build image of {workload}"),
        "docker",
        vec![
            "build".into(),
            "-q".into(),
            "--label".into(),
            format!("alembic.workload={workload}"),
            context.display().to_string(),
        ],
    )
    .read_only()
}

/// `docker tag <id> <tag>` on this machine (a name for the build, like the build itself).
pub(crate) fn tag_op(id: &str, tag: &str) -> Op {
    Op::new(
        PLANE,
        format!("tag {tag}"),
        "docker",
        vec!["tag".into(), id.into(), tag.into()],
    )
    .read_only()
}

/// Build (or take from the environment) the image of every droplet workload with `build`.
/// `base` is alembic.toml's directory; `env` reads the applying environment.
pub(crate) fn resolve(
    t: &Topology,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    ex: &mut Executor<'_>,
) -> Result<Vec<Pin>, DeployError> {
    let mut pins = Vec::new();
    for w in t.on_plane(Plane::Droplet) {
        let Some(ctx) = &w.build else { continue };
        let name = w.name.to_string();
        let var = alembic_render::github::image_env(w);
        if let Some(given) = env(&var).filter(|v| !v.trim().is_empty()) {
            if !given.contains("@sha256:") {
                return Err(DeployError::Config(format!(
                    "{var} is {given:?}: it must name the image by digest \
                     (<registry>/<name>@sha256:...), so every release pins exact bits"
                )));
            }
            pins.push(Pin {
                workload: name,
                reference: given,
                source: Source::Given { env: var },
            });
            continue;
        }
        let context = ctx.to_string();
        let dir = base.join(&context);
        let out = ex.query(&build_op(&name, &dir))?;
        let id = out.stdout_text().trim().to_owned();
        if !out.success() || !id.starts_with("sha256:") {
            return Err(DeployError::Step {
                step: format!("build image of {name} from {context}"),
                detail: tail(&out.stderr_text(), 15),
            });
        }
        let tagged = ex.query(&tag_op(
            &id,
            &local_tag(t.project.name.as_str(), &name, &id),
        ))?;
        if !tagged.success() {
            return Err(DeployError::Step {
                step: format!("tag image of {name}"),
                detail: tail(&tagged.stderr_text(), 5),
            });
        }
        let source = match &t.droplet.registry {
            Some(registry) => Source::Push {
                context,
                id: id.clone(),
                repository: format!("{registry}/{name}"),
            },
            None => Source::Built {
                context,
                id: id.clone(),
            },
        };
        pins.push(Pin {
            workload: name,
            reference: id,
            source,
        });
    }
    Ok(pins)
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The pins as the compose renderer and the ledger take them: workload -> reference.
pub(crate) fn pin_map(pins: &[Pin]) -> BTreeMap<String, String> {
    pins.iter()
        .map(|p| (p.workload.clone(), p.reference.clone()))
        .collect()
}

/// Which images change against `current` (the current release's pins).
pub(crate) fn changes(pins: &[Pin], current: &BTreeMap<String, String>) -> Vec<ImageChange> {
    pins.iter()
        .map(|p| {
            let from = current.get(&p.workload).cloned();
            let action = match &from {
                None => "added",
                Some(f) if *f == p.reference => "unchanged",
                Some(_) => "changed",
            };
            ImageChange {
                workload: p.workload.clone(),
                action: action.to_owned(),
                from,
                to: p.reference.clone(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::droplet::{deliveries, Target};

    #[test]
    fn names_and_changes() {
        let id = "sha256:0123456789abcdef0123";
        assert_eq!(short_id(id), "0123456789ab");
        assert_eq!(local_tag("p", "api", id), "p/api:0123456789ab");
        assert_eq!(droplet_tag("p", "api", id), "p/api:pinned-0123456789ab");
        let pin = |w: &str, r: &str| Pin {
            workload: w.into(),
            reference: r.into(),
            source: Source::Given { env: "X".into() },
        };
        let cur: BTreeMap<String, String> = [
            ("a".to_owned(), "sha256:1".to_owned()),
            ("b".to_owned(), "sha256:2".to_owned()),
        ]
        .into();
        let c = changes(
            &[
                pin("a", "sha256:1"),
                pin("b", "sha256:3"),
                pin("c", "sha256:4"),
            ],
            &cur,
        );
        let actions: Vec<&str> = c.iter().map(|c| c.action.as_str()).collect();
        assert_eq!(actions, ["unchanged", "changed", "added"]);
        assert_eq!(c[1].from.as_deref(), Some("sha256:2"));
    }

    fn target() -> Target {
        let mut t = alembic_config::default_topology();
        t.droplet.address = Some("203.0.113.20".parse().unwrap());
        Target::from_topology(
            &t,
            &crate::droplet::Address::configured(t.droplet.address.unwrap()),
        )
    }

    /// The dry-run transcript of each delivery: ssh shipping checks the droplet's pinned name
    /// first and pipes `docker save` into `docker load`; a registry build is tagged, pushed and
    /// pulled by digest (no registry here to push to: this is the whole test of that path).
    #[test]
    fn deliveries_as_a_dry_run_shows_them() {
        let id = "sha256:1ac87c850f33aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        let pins = [
            Pin {
                workload: "api".into(),
                reference: id.into(),
                source: Source::Built {
                    context: "services/api".into(),
                    id: id.into(),
                },
            },
            Pin {
                workload: "worker".into(),
                reference: id.into(),
                source: Source::Push {
                    context: ".".into(),
                    id: id.into(),
                    repository: "ghcr.io/acme/worker".into(),
                },
            },
            Pin {
                workload: "web".into(),
                reference: "ghcr.io/acme/web@sha256:00ff".into(),
                source: Source::Given {
                    env: "ALEMBIC_IMAGE_WEB".into(),
                },
            },
        ];
        let d = deliveries(&target(), &pins);
        let shown: Vec<Vec<String>> = d
            .iter()
            .map(|d| d.ops().iter().map(|o| o.to_string()).collect())
            .collect();
        let ssh = &shown[0];
        assert_eq!(ssh.len(), 2, "{ssh:?}");
        assert!(!d[0].have.as_ref().unwrap().mutating);
        assert!(
            ssh[0].contains("alembic/api:pinned-1ac87c850f33"),
            "{}",
            ssh[0]
        );
        assert!(
            ssh[1].starts_with(&format!("docker save {id} | ssh ")),
            "{}",
            ssh[1]
        );
        assert!(ssh[1].contains("docker load -q"), "{}", ssh[1]);
        let push = &shown[1];
        assert_eq!(
            push[..2],
            [
                format!("docker tag {id} ghcr.io/acme/worker:1ac87c850f33"),
                "docker push -q ghcr.io/acme/worker:1ac87c850f33".to_owned()
            ]
        );
        assert!(
            push[2].contains("docker pull -q")
                && push[2].ends_with("'ghcr.io/acme/worker@<digest of the push>'\""),
            "{}",
            push[2]
        );
        assert_eq!(shown[2].len(), 1);
        assert!(
            shown[2][0].ends_with("ghcr.io/acme/web@sha256:00ff\""),
            "{}",
            shown[2][0]
        );
    }

    /// The plan says which images change, the new release's ledger entry pins them, and the
    /// delivery runs before the release is uploaded.
    #[test]
    fn the_plan_shows_image_changes_and_the_entry_pins_them() {
        use crate::ledger::{Ledger, Outcome, Release};
        let id = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
        let bundle = crate::droplet::Bundle {
            files: [
                (
                    "compose.yaml".to_owned(),
                    format!("image: {id}\n").into_bytes(),
                ),
                ("Caddyfile".to_owned(), b":443 {\n}\n".to_vec()),
            ]
            .into(),
            secrets: vec![],
            images: vec![id.into()],
            pins: vec![Pin {
                workload: "api".into(),
                reference: id.into(),
                source: Source::Built {
                    context: "services/api".into(),
                    id: id.into(),
                },
            }],
            volumes: vec![],
        };
        let ledger = Ledger {
            format_version: 1,
            current: Some(1),
            releases: vec![Release {
                number: 1,
                artifacts: BTreeMap::new(),
                images: vec![],
                pins: [("api".to_owned(), "sha256:1111".to_owned())].into(),
                secrets: vec![],
                time: crate::ledger::rfc3339(0),
                outcome: Outcome::Deployed,
                by: "t".into(),
                note: None,
                volumes: vec![],
            }],
        };
        let state = crate::droplet::RemoteState {
            ledger,
            dirs: vec![1],
            ..Default::default()
        };
        let p = crate::droplet::plan(
            &target(),
            &bundle,
            state,
            crate::lease::Lease::for_this_process(),
            "me",
        );
        assert_eq!(p.plane.images.len(), 1);
        assert_eq!(p.plane.images[0].action, "changed");
        assert_eq!(p.plane.images[0].from.as_deref(), Some("sha256:1111"));
        let ops = p.ops.unwrap();
        assert_eq!(ops.entry.pins["api"], id);
        let steps: Vec<&str> = p.plane.ops.iter().map(|o| o.step.as_str()).collect();
        let send = steps
            .iter()
            .position(|s| *s == "send image of api")
            .unwrap();
        let upload = steps
            .iter()
            .position(|s| s.starts_with("create release dir"))
            .unwrap();
        assert!(send < upload, "{steps:?}");
        let json = serde_json::to_value(&p.plane).unwrap();
        assert_eq!(json["images"][0]["action"], "changed");
    }
}
