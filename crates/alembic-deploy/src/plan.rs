//! Plans as data: per plane, each artifact added/changed/removed against the last applied
//! release (with a unified diff when the old text is known), and the exact ordered ops apply
//! would run. Saved with `plan --out`, a plan is checked against a fresh one before `apply FILE`
//! runs anything: if an artifact's hash or the base release differs, it is refused.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ledger::sha256_hex;
use crate::ops::Op;
use crate::stage::Stage;

/// What a plan does to one artifact.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A new file.
    Add,
    /// A file whose bytes or mode change.
    Change,
    /// A file that goes away.
    Remove,
}

impl Action {
    /// The one-character mark a plan shows (`+`, `~`, `-`), as Terraform does.
    pub fn symbol(self) -> char {
        match self {
            Action::Add => '+',
            Action::Change => '~',
            Action::Remove => '-',
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactChange {
    pub path: String,
    pub action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_sha256: Option<String>,
    /// Unified diff, when both sides' text is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

/// One plane's part of a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanePlan {
    /// The stage this part belongs to.
    pub plane: Stage,
    /// Which droplet, when the plane has several (its address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The release the changes are measured against (droplet: the ledger's `current`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_release: Option<u64>,
    /// The release number apply would create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<u64>,
    /// Files the stage adds, changes or removes.
    pub changes: Vec<ArtifactChange>,
    /// The ops the stage runs, in order: exactly what apply walks.
    pub ops: Vec<Op>,
    /// Things the reader should know (a plane skipped, and why).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Droplet: the image of each `build` workload against the current release's pin.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<crate::images::ImageChange>,
}

impl PlanePlan {
    /// An empty part for `plane`: no changes, no ops, no notes.
    pub fn new(plane: Stage) -> PlanePlan {
        PlanePlan {
            plane,
            target: None,
            base_release: None,
            release: None,
            changes: Vec::new(),
            ops: Vec::new(),
            notes: Vec::new(),
            images: Vec::new(),
        }
    }

    /// Counts for the stage's summary line: artifacts (the droplet's release files) added,
    /// changed and removed. Infra's resource counts come from Terraform's own plan at apply.
    pub fn counts(&self) -> Counts {
        let n = |a: Action| self.changes.iter().filter(|c| c.action == a).count();
        Counts {
            add: n(Action::Add),
            change: n(Action::Change),
            destroy: n(Action::Remove),
        }
    }

    /// The stage's one-line summary, as a reviewer reads it.
    pub fn summary_line(&self) -> String {
        let c = self.counts();
        let images = self
            .images
            .iter()
            .filter(|i| i.action != "unchanged")
            .count();
        let mut line = match (self.plane, self.release) {
            (Stage::Droplet, Some(n)) => format!(
                "droplet: release {n}: {} to add, {} to change, {} to remove",
                c.add, c.change, c.destroy
            ),
            // A cluster's apply (Kubernetes) has ops but no numbered release of its own.
            (Stage::Droplet, None) if self.mutating_ops() == 0 => {
                "droplet: no new release".to_owned()
            }
            (Stage::Infra, _) if self.ops.is_empty() => "infra: nothing to run".to_owned(),
            (Stage::Infra, _) => {
                "infra: Terraform's plan (its resource counts are shown when apply runs it)"
                    .to_owned()
            }
            (stage, _) => format!(
                "{stage}: {} operation(s), {} change state",
                self.ops.len(),
                self.mutating_ops()
            ),
        };
        if images > 0 {
            line.push_str(&format!("; {images} image(s) changed"));
        }
        line
    }

    /// How many of its ops change something.
    pub fn mutating_ops(&self) -> usize {
        self.ops.iter().filter(|o| o.mutating).count()
    }

    /// True when it changes a file or runs an op that changes something.
    pub fn has_changes(&self) -> bool {
        !self.changes.is_empty() || self.mutating_ops() > 0
    }
}

/// What a stage (or the whole plan) adds, changes and destroys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
}

/// A plan as saved by `plan --out` and read by `apply FILE`: every stage's part, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The saved document's version (1); other versions are refused.
    pub format_version: u32,
    /// Each stage's part, in the order apply runs them.
    pub planes: Vec<PlanePlan>,
}

impl Plan {
    /// A plan of `planes` at the current format version.
    pub fn new(planes: Vec<PlanePlan>) -> Plan {
        Plan {
            format_version: 1,
            planes,
        }
    }

    /// True when any stage has changes.
    pub fn has_changes(&self) -> bool {
        self.planes.iter().any(PlanePlan::has_changes)
    }

    /// The whole plan's counts (the sum of its stages').
    pub fn counts(&self) -> Counts {
        self.planes.iter().fold(Counts::default(), |t, p| {
            let c = p.counts();
            Counts {
                add: t.add + c.add,
                change: t.change + c.change,
                destroy: t.destroy + c.destroy,
            }
        })
    }

    /// `Plan: X to add, Y to change, Z to destroy`, as Terraform ends a plan.
    pub fn summary_line(&self) -> String {
        let c = self.counts();
        format!(
            "Plan: {} to add, {} to change, {} to destroy",
            c.add, c.change, c.destroy
        )
    }

    /// The `plan --json` document: the plan plus `has_changes` and the summaries (per stage and whole).
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).expect("plans serialise");
        v["has_changes"] = self.has_changes().into();
        // The same summary the human view prints, per stage and for the whole plan.
        v["summary"] = serde_json::to_value(self.counts()).expect("counts serialise");
        v["summary"]["line"] = self.summary_line().into();
        if let Some(planes) = v["planes"].as_array_mut() {
            for (j, p) in planes.iter_mut().zip(&self.planes) {
                j["summary"] = serde_json::to_value(p.counts()).expect("counts serialise");
                j["summary"]["line"] = p.summary_line().into();
            }
        }
        v
    }

    /// Read a saved plan, refusing anything that is not one of this format version.
    pub fn parse(text: &str) -> Result<Plan, String> {
        let p: Plan =
            serde_json::from_str(text).map_err(|e| format!("not a saved alembic plan: {e}"))?;
        if p.format_version != 1 {
            return Err(format!(
                "saved plan has format_version {}; this alembic reads 1",
                p.format_version
            ));
        }
        Ok(p)
    }

    /// Why a saved plan may not be applied now: for each of its planes, the fresh plan must
    /// start from the same release and carry the same artifact changes (by sha256).
    pub fn staleness(&self, fresh: &Plan) -> Vec<String> {
        let mut why = Vec::new();
        for saved in &self.planes {
            let Some(now) = fresh.planes.iter().find(|p| p.plane == saved.plane) else {
                why.push(format!("plane {} is no longer planned", saved.plane));
                continue;
            };
            if saved.base_release != now.base_release {
                why.push(format!(
                    "plane {}: planned against release {}, the droplet is now at {}",
                    saved.plane,
                    opt(saved.base_release),
                    opt(now.base_release)
                ));
            }
            let key = |c: &ArtifactChange| (c.path.clone(), (c.action, c.sha256.clone()));
            let a: BTreeMap<_, _> = saved.changes.iter().map(key).collect();
            let b: BTreeMap<_, _> = now.changes.iter().map(key).collect();
            for path in a.keys().chain(b.keys().filter(|k| !a.contains_key(*k))) {
                if a.get(path) != b.get(path) {
                    why.push(format!(
                        "plane {}: {path} no longer matches the saved plan",
                        saved.plane
                    ));
                }
            }
        }
        why
    }
}

fn opt(n: Option<u64>) -> String {
    n.map_or_else(|| "none".to_owned(), |n| n.to_string())
}

/// What the last applied release held for one artifact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OldArtifact {
    pub sha256: String,
    /// The old text, when it could be read back.
    pub text: Option<String>,
}

/// Compare the new artifacts with the old ones, in path order.
pub(crate) fn diff_artifacts(
    old: &BTreeMap<String, OldArtifact>,
    new: &BTreeMap<String, Vec<u8>>,
) -> Vec<ArtifactChange> {
    let mut out = Vec::new();
    for (path, bytes) in new {
        let sha = sha256_hex(bytes);
        match old.get(path) {
            None => out.push(ArtifactChange {
                path: path.clone(),
                action: Action::Add,
                sha256: Some(sha),
                old_sha256: None,
                diff: std::str::from_utf8(bytes)
                    .ok()
                    .map(|t| unified_diff(path, "", t)),
            }),
            Some(o) if o.sha256 == sha => {}
            Some(o) => out.push(ArtifactChange {
                path: path.clone(),
                action: Action::Change,
                sha256: Some(sha),
                old_sha256: Some(o.sha256.clone()),
                diff: match (&o.text, std::str::from_utf8(bytes)) {
                    (Some(a), Ok(b)) => Some(unified_diff(path, a, b)),
                    _ => None,
                },
            }),
        }
    }
    for (path, o) in old {
        if !new.contains_key(path) {
            out.push(ArtifactChange {
                path: path.clone(),
                action: Action::Remove,
                sha256: None,
                old_sha256: Some(o.sha256.clone()),
                diff: o.text.as_deref().map(|t| unified_diff(path, t, "")),
            });
        }
    }
    out
}

pub(crate) fn unified_diff(path: &str, old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{path}"), &format!("b/{path}"))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn old(text: &str) -> OldArtifact {
        OldArtifact {
            sha256: sha256_hex(text.as_bytes()),
            text: Some(text.to_owned()),
        }
    }

    #[test]
    fn classifies_and_diffs() {
        let o: BTreeMap<String, OldArtifact> = [
            ("same".to_owned(), old("x\n")),
            ("changed".to_owned(), old("a\nb\n")),
            ("gone".to_owned(), old("z\n")),
        ]
        .into();
        let n: BTreeMap<String, Vec<u8>> = [
            ("same".to_owned(), b"x\n".to_vec()),
            ("changed".to_owned(), b"a\nc\n".to_vec()),
            ("new".to_owned(), b"n\n".to_vec()),
        ]
        .into();
        let c = diff_artifacts(&o, &n);
        let acts: Vec<(&str, Action)> = c.iter().map(|c| (c.path.as_str(), c.action)).collect();
        assert_eq!(
            acts,
            vec![
                ("changed", Action::Change),
                ("new", Action::Add),
                ("gone", Action::Remove)
            ]
        );
        assert_eq!(
            c[0].diff.as_deref().unwrap(),
            "--- a/changed\n+++ b/changed\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n"
        );
    }

    #[test]
    fn a_saved_plan_is_stale_when_an_artifact_or_base_moves() {
        let mut p = PlanePlan::new(Stage::Droplet);
        p.base_release = Some(1);
        p.changes = diff_artifacts(&BTreeMap::new(), &[("c".to_owned(), b"1".to_vec())].into());
        let saved = Plan::new(vec![p.clone()]);
        assert!(saved.staleness(&saved.clone()).is_empty());
        let mut moved = p.clone();
        moved.changes = diff_artifacts(&BTreeMap::new(), &[("c".to_owned(), b"2".to_vec())].into());
        let why = saved.staleness(&Plan::new(vec![moved]));
        assert_eq!(
            why,
            vec!["plane droplet: c no longer matches the saved plan"]
        );
        let mut based = p;
        based.base_release = Some(2);
        assert_eq!(saved.staleness(&Plan::new(vec![based])).len(), 1);
        let text = serde_json::to_string(&saved).unwrap();
        assert_eq!(Plan::parse(&text).unwrap(), saved);
    }
}
