//! What `terraform show -json` says a plan does: per resource, its action; the counts.

use super::*;

/// What Terraform will do to one resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Action {
    NoOp,
    Read,
    Create,
    Update,
    Delete,
    /// `["delete","create"]`: destroy first, then create.
    DeleteThenCreate,
    /// `["create","delete"]`: create the replacement first (`create_before_destroy`).
    CreateThenDelete,
}

impl Action {
    /// From `resource_changes[].change.actions`.
    pub(crate) fn from_actions(actions: &[String]) -> Option<Action> {
        let a: Vec<&str> = actions.iter().map(String::as_str).collect();
        Some(match a.as_slice() {
            ["no-op"] => Action::NoOp,
            ["read"] => Action::Read,
            ["create"] => Action::Create,
            ["update"] => Action::Update,
            ["delete"] => Action::Delete,
            ["delete", "create"] => Action::DeleteThenCreate,
            ["create", "delete"] => Action::CreateThenDelete,
            _ => return None,
        })
    }

    pub(crate) fn is_replace(self) -> bool {
        matches!(self, Action::DeleteThenCreate | Action::CreateThenDelete)
    }

    /// Terraform's plan symbol.
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            Action::NoOp => " ",
            Action::Read => "<=",
            Action::Create => "+",
            Action::Update => "~",
            Action::Delete => "-",
            Action::DeleteThenCreate => "-/+",
            Action::CreateThenDelete => "+/-",
        }
    }

    pub(crate) fn describe(self) -> &'static str {
        match self {
            Action::NoOp => "no change",
            Action::Read => "read",
            Action::Create => "create",
            Action::Update => "update in place",
            Action::Delete => "destroy",
            Action::DeleteThenCreate => "replace (destroy, then create)",
            Action::CreateThenDelete => "replace (create, then destroy)",
        }
    }
}

/// One resource in the plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ResourceChange {
    pub address: String,
    #[serde(rename = "type")]
    pub resource_type: String,
    pub action: Action,
    /// Attribute paths that force the replacement (`replace_paths`), when Terraform says.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replace_because: Vec<String>,
}

/// The plan in numbers, with every changing resource. Holds no attribute values.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PlanSummary {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
    /// Resources with an action other than no-op/read, in plan order.
    pub resources: Vec<ResourceChange>,
    /// Names of outputs whose value changes (values are never kept).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs_changed: Vec<String>,
}

impl PlanSummary {
    pub(crate) fn has_changes(&self) -> bool {
        !self.resources.is_empty() || !self.outputs_changed.is_empty()
    }

    pub(crate) fn replacements(&self) -> impl Iterator<Item = &ResourceChange> {
        self.resources.iter().filter(|r| r.action.is_replace())
    }

    /// Refuse a plan that replaces a protected resource unless replacement is allowed.
    pub(crate) fn check_replacements(
        &self,
        protected: &[&str],
        allow_replace: bool,
    ) -> Result<(), TfError> {
        if allow_replace {
            return Ok(());
        }
        let refused: Vec<ResourceChange> = self
            .replacements()
            .filter(|r| protected.contains(&r.resource_type.as_str()))
            .cloned()
            .collect();
        if refused.is_empty() {
            Ok(())
        } else {
            Err(TfError::ReplaceRefused(refused))
        }
    }
}

impl fmt::Display for PlanSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.has_changes() {
            return writeln!(f, "No changes. Infrastructure matches the configuration.");
        }
        for r in &self.resources {
            write!(
                f,
                "  {:>3} {} ({})",
                r.action.symbol(),
                r.address,
                r.action.describe()
            )?;
            if !r.replace_because.is_empty() {
                write!(f, " forced by {}", r.replace_because.join(", "))?;
            }
            writeln!(f)?;
        }
        for o in &self.outputs_changed {
            writeln!(f, "  output {o} changes")?;
        }
        writeln!(
            f,
            "Plan: {} to add, {} to change, {} to destroy.",
            self.add, self.change, self.destroy
        )
    }
}
