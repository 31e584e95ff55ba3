//! The workflow file's shape: typed structs that `yaml_serde` writes in field order.

use serde::Serialize;

use super::Pin;
use crate::ordered::Ordered;

/// A `with:` input: action inputs are strings or booleans.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Input {
    Str(String),
    Bool(bool),
}

/// A map that serialises as `{}` (an event with no filters).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Empty {}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Workflow {
    pub name: String,
    pub on: On,
    pub permissions: Ordered<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<Concurrency>,
    pub jobs: Ordered<Job>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct On {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push: Option<Push>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<Empty>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow_dispatch: Option<Empty>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Push {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub branches: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Concurrency {
    pub group: String,
    pub cancel_in_progress: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Job {
    pub name: String,
    pub runs_on: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
    #[serde(rename = "if", skip_serializing_if = "Option::is_none")]
    pub if_: Option<String>,
    pub permissions: Ordered<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<Concurrency>,
    pub timeout_minutes: u32,
    #[serde(skip_serializing_if = "Ordered::is_empty")]
    pub outputs: Ordered<String>,
    pub steps: Vec<Step>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Step {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "if", skip_serializing_if = "Option::is_none")]
    pub if_: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uses: Option<String>,
    #[serde(skip_serializing_if = "Ordered::is_empty")]
    pub with: Ordered<Input>,
    #[serde(skip_serializing_if = "Ordered::is_empty")]
    pub env: Ordered<String>,
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
