//! What a rule is: a static with its stable code, default severity, one-line summary and help,
//! plus a check function. Rules build located [`Diagnostic`]s through [`Rule::at`], so every
//! finding carries the rule's code and help without each check repeating them.

use std::ops::Range;

use alembic_config::{Code, Diagnostic, Severity, SourceFile, Topology};

/// A rule's identity and wording. Several rules may share a code (EXP005 is checked over the
/// config and over Terraform); SARIF metadata is per code.
#[derive(Debug)]
pub struct Rule {
    /// The stable diagnostic code.
    pub code: Code,
    /// The default severity of a finding.
    pub severity: Severity,
    /// One line saying what the problem is.
    pub summary: &'static str,
    /// How to fix it.
    pub help: &'static str,
}

impl Rule {
    /// A finding of this rule at `span` in `src`, with the rule's severity and help.
    pub fn at(
        &self,
        src: &SourceFile,
        span: Range<usize>,
        message: impl Into<String>,
    ) -> Diagnostic {
        src.diag(
            self.code,
            self.severity,
            span,
            message,
            Some(self.help.to_owned()),
        )
    }

    /// Like [`Rule::at`] with another severity (a weaker form of the same problem).
    pub fn at_severity(
        &self,
        severity: Severity,
        src: &SourceFile,
        span: Range<usize>,
        message: impl Into<String>,
    ) -> Diagnostic {
        let mut d = self.at(src, span, message);
        d.severity = severity;
        d
    }
}

/// A rule over the validated topology; spans come from `Topology::spans`.
pub struct TopologyRule {
    /// The rule's identity and wording.
    pub rule: Rule,
    /// The check: every finding over the topology.
    pub check: fn(&Rule, &Topology, &SourceFile) -> Vec<Diagnostic>,
}
