//! The workflow file's shape: typed structs that `yaml_serde` writes in field order.

use serde::Serialize;

use super::Pin;
use crate::ordered::Ordered;

/// A `with:` input: action inputs are strings or booleans.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Input {
    /// A string input.
    Str(String),
    /// A boolean input.
    Bool(bool),
}

/// A map that serialises as `{}` (an event with no filters).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Empty {}

/// A workflow file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Workflow {
    /// `name:`
    pub name: String,
    /// `on:`
    pub on: On,
    /// `permissions:`
    pub permissions: Ordered<String>,
    /// `concurrency:`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<Concurrency>,
    /// `jobs:`
    pub jobs: Ordered<Job>,
}

/// `on:`: the events that start the workflow.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct On {
    /// `push:`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push: Option<Push>,
    /// `pull_request:`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<Empty>,
    /// `workflow_dispatch:`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow_dispatch: Option<Empty>,
}

/// `on.push`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Push {
    /// `branches:`
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub branches: Vec<String>,
}

/// `concurrency:`: one run at a time per group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Concurrency {
    /// `group:`
    pub group: String,
    /// `cancel-in-progress:`
    pub cancel_in_progress: bool,
}

/// One entry of `jobs:`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Job {
    /// `name:`
    pub name: String,
    /// `runs-on:`
    pub runs_on: String,
    /// `needs:`
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
    /// `if:`
    #[serde(rename = "if", skip_serializing_if = "Option::is_none")]
    pub if_: Option<String>,
    /// `permissions:`
    pub permissions: Ordered<String>,
    /// `environment:`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// `concurrency:`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<Concurrency>,
    /// `timeout-minutes:`
    pub timeout_minutes: u32,
    /// `outputs:`
    #[serde(skip_serializing_if = "Ordered::is_empty")]
    pub outputs: Ordered<String>,
    /// `steps:`
    pub steps: Vec<Step>,
}

/// One entry of a job's `steps:`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Step {
    /// `name:`
    pub name: String,
    /// `id:`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `if:`
    #[serde(rename = "if", skip_serializing_if = "Option::is_none")]
    pub if_: Option<String>,
    /// `uses:`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uses: Option<String>,
    /// `with:`
    #[serde(skip_serializing_if = "Ordered::is_empty")]
    pub with: Ordered<Input>,
    /// `env:`
    #[serde(skip_serializing_if = "Ordered::is_empty")]
    pub env: Ordered<String>,
    /// `run:`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
}

impl Step {
    pub(super) fn run(name: impl Into<String>, script: impl Into<String>) -> Self {
        Step {
            name: name.into(),
            run: Some(script.into()),
            ..Step::default()
        }
    }

    pub(super) fn uses(name: impl Into<String>, pin: Pin, with: Ordered<Input>) -> Self {
        Step {
            name: name.into(),
            uses: Some(pin.uses()),
            with,
            ..Step::default()
        }
    }
}
