//! Rendered Terraform checked against the DigitalOcean provider's schema the way
//! `terraform validate` checks it, without the provider binary (which cannot be downloaded
//! where the tests run). The schema is data: `data/digitalocean-provider-<version>.json`, one
//! entry per resource alembic renders, with its sources.
//!
//! What is checked, per `resource` block: the resource type exists; every argument is one the
//! schema (or Terraform's meta-arguments) accepts and is configurable (not computed-only);
//! every required argument is set; nested blocks are blocks and attributes are attributes;
//! block counts within min/max items; literal values of the argument's type and passing its
//! validation (one of, not empty, in range); the resource's plan-time checks. A redefined
//! argument is a parse error already. Across all files: every `<type>.<name>.<attribute>`
//! reference names a declared resource and an attribute its schema exports, and
//! `lifecycle.ignore_changes` names arguments of the resource. Hand-written because no crate
//! validates HCL against a Terraform provider schema; the walk over `hcl::Body` is small.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use hcl::expr::{Expression, TraversalOperator};
use hcl::{Block, Body};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSchema {
    pub provider: String,
    pub version: String,
    pub about: Vec<String>,
    pub terraform_resource_meta: MetaSchema,
    pub resources: BTreeMap<String, ResourceSchema>,
    pub data_sources: BTreeMap<String, ResourceSchema>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaSchema {
    pub source: String,
    pub attributes: BTreeMap<String, AttrSchema>,
    pub blocks: BTreeMap<String, NestedBlock>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceSchema {
    pub source: Source,
    #[serde(default)]
    pub notes: Vec<String>,
    pub attributes: BTreeMap<String, AttrSchema>,
    pub blocks: BTreeMap<String, NestedBlock>,
    #[serde(default)]
    pub plan_checks: PlanChecks,
}

/// The resource's own plan-time checks (the provider's CustomizeDiff), beyond its schema.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanChecks {
    #[serde(default)]
    pub require_one_of_blocks: Vec<String>,
    #[serde(default)]
    pub require: Vec<RequireWhen>,
}

/// `require` must be set when argument `when` has a literal value in `values`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequireWhen {
    pub when: String,
    #[serde(rename = "in")]
    pub values: Vec<String>,
    pub require: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub schema: String,
    pub docs: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttrSchema {
    #[serde(rename = "type")]
    pub ty: String,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub optional: bool,
    #[serde(default)]
    pub computed: bool,
    #[serde(default)]
    pub deprecated: bool,
    /// The schema's validation functions (run by `terraform validate`).
    #[serde(default)]
    pub one_of: Vec<String>,
    #[serde(default)]
    pub ignore_case: bool,
    /// Not "" (or 0); for a set, no element "".
    #[serde(default)]
    pub non_empty: bool,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub max_length: Option<usize>,
}

impl AttrSchema {
    /// Settable in configuration (a computed-only attribute is not).
    pub fn configurable(&self) -> bool {
        self.required || self.optional
    }
}

#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Nesting {
    List,
    Set,
    Single,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NestedBlock {
    pub nesting: Nesting,
    #[serde(default)]
    pub labels: usize,
    pub min_items: usize,
    /// 0 = no limit.
    pub max_items: usize,
    #[serde(default)]
    pub attributes: BTreeMap<String, AttrSchema>,
    #[serde(default)]
    pub blocks: BTreeMap<String, NestedBlock>,
    /// Contents not described here (provisioner/connection bodies): not checked.
    #[serde(default)]
    pub open: bool,
    #[serde(default)]
    pub plan_checks: PlanChecks,
}

/// The provider release the data describes and rendered `versions.tf` pins.
pub fn schema_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!(
        "data/digitalocean-provider-{}.json",
        alembic_render::terraform::PROVIDER_RELEASE
    ))
}

pub fn load_schema() -> ProviderSchema {
    let path = schema_path();
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Parse,
    UnknownResourceType,
    UnknownTopLevelBlock,
    WrongLabels,
    UnsupportedArgument,
    UnconfigurableAttribute,
    MissingRequiredArgument,
    /// `name = ...` where the schema has a nested block `name { ... }`.
    ArgumentWhereBlockExpected,
    /// `name { ... }` where the schema has an argument `name = ...`.
    BlockWhereArgumentExpected,
    UnsupportedBlock,
    TooManyBlocks,
    TooFewBlocks,
    TypeMismatch,
    /// A literal the schema's validation refuses (not one of, empty, out of range, too long).
    InvalidValue,
    /// A plan-time requirement of the resource (`require_one_of_blocks`, `require` ... `when`).
    PlanCheckFailed,
    UndeclaredResource,
    UnsupportedAttributeReference,
    IgnoreChangesUnknown,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    pub file: String,
    /// Dotted path of the offending element, e.g.
    /// `resource.digitalocean_firewall.edge.inbound_rule[1].source_addresses`.
    pub at: String,
    pub kind: Kind,
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}: {:?}: {}",
            self.file, self.at, self.kind, self.message
        )
    }
}

/// Outcome of checking a set of files: findings and how many resource blocks were checked.
#[derive(Debug, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub resources_checked: usize,
    pub arguments_checked: usize,
    pub references_checked: usize,
}

struct Ctx<'a> {
    schema: &'a ProviderSchema,
    file: String,
    report: &'a mut Report,
}

impl Ctx<'_> {
    fn find(&mut self, at: &str, kind: Kind, message: String) {
        self.report.findings.push(Finding {
            file: self.file.clone(),
            at: at.to_owned(),
            kind,
            message,
        });
    }
}

/// Check one Terraform module: `(file name, text)` pairs, all in the same directory.
pub fn check_module(schema: &ProviderSchema, files: &[(String, String)]) -> Report {
    let mut report = Report::default();
    let mut parsed = Vec::new();
    for (file, text) in files {
        match hcl::parse(text) {
            Ok(body) => parsed.push((file.clone(), body)),
            Err(e) => report.findings.push(Finding {
                file: file.clone(),
                at: String::new(),
                kind: Kind::Parse,
                message: e.to_string(),
            }),
        }
    }
    // `terraform validate` stops at a syntax error; so does this.
    if !report.findings.is_empty() {
        return report;
    }
    // Declared resources across the whole module, as Terraform resolves references.
    let mut declared: BTreeMap<(String, String), String> = BTreeMap::new();
    for (_, body) in &parsed {
        for b in body.blocks() {
            if b.identifier() == "resource" && b.labels().len() == 2 {
                let ty = b.labels()[0].as_str().to_owned();
                let name = b.labels()[1].as_str().to_owned();
                declared.insert((ty.clone(), name), ty);
            }
        }
    }
    for (file, body) in &parsed {
        let mut cx = Ctx {
            schema,
            file: file.clone(),
            report: &mut report,
        };
        for b in body.blocks() {
            top_level_block(&mut cx, b);
        }
        let mut exprs = Vec::new();
        collect_body_exprs(body, &mut exprs);
        for e in exprs {
            check_references(&mut cx, e, &declared);
        }
    }
    report.findings.sort();
    report
}

fn top_level_block(cx: &mut Ctx<'_>, b: &Block) {
    match b.identifier() {
        "resource" => {
            let labels: Vec<&str> = b.labels().iter().map(|l| l.as_str()).collect();
            let at = format!("resource.{}", labels.join("."));
            if labels.len() != 2 {
                cx.find(
                    &at,
                    Kind::WrongLabels,
                    format!("a resource block has 2 labels, this one {}", labels.len()),
                );
                return;
            }
            let Some(rs) = cx.schema.resources.get(labels[0]) else {
                cx.find(
                    &at,
                    Kind::UnknownResourceType,
                    format!(
                        "the provider {} {} has no resource type {:?}",
                        cx.schema.provider, cx.schema.version, labels[0]
                    ),
                );
                return;
            };
            cx.report.resources_checked += 1;
            let s = Shape {
                attrs: &rs.attributes,
                blocks: &rs.blocks,
                plan: &rs.plan_checks,
            };
            check_body(cx, &at, b.body(), &s, true);
            check_ignore_changes(cx, &at, b.body(), rs);
        }
        "data" => {
            let labels: Vec<&str> = b.labels().iter().map(|l| l.as_str()).collect();
            let at = format!("data.{}", labels.join("."));
            match labels.first().and_then(|t| cx.schema.data_sources.get(*t)) {
                Some(ds) if labels.len() == 2 => {
                    cx.report.resources_checked += 1;
                    let s = Shape {
                        attrs: &ds.attributes,
                        blocks: &ds.blocks,
                        plan: &ds.plan_checks,
                    };
                    check_body(cx, &at, b.body(), &s, true);
                }
                _ => cx.find(
                    &at,
                    Kind::UnknownResourceType,
                    format!(
                        "the data describes no data source {:?}",
                        labels.first().unwrap_or(&"")
                    ),
                ),
            }
        }
        // Terraform's own blocks: not part of the provider schema.
        "terraform" | "output" | "variable" | "locals" | "provider" | "moved" | "import"
        | "check" | "removed" => {}
        other => cx.find(
            other,
            Kind::UnknownTopLevelBlock,
            format!("{other:?} is not a Terraform top-level block"),
        ),
    }
}

/// What a body may hold: a resource's or a nested block's schema.
struct Shape<'a> {
    attrs: &'a BTreeMap<String, AttrSchema>,
    blocks: &'a BTreeMap<String, NestedBlock>,
    plan: &'a PlanChecks,
}

fn check_body(cx: &mut Ctx<'_>, at: &str, body: &Body, shape: &Shape<'_>, resource_level: bool) {
    let (attrs, blocks) = (shape.attrs, shape.blocks);
    let meta = &cx.schema.terraform_resource_meta;
    let mut seen = BTreeSet::new();
    for a in body.attributes() {
        let key = a.key();
        let here = format!("{at}.{key}");
        // A redefined argument never gets here: the HCL parser refuses it, as Terraform's does.
        seen.insert(key.to_owned());
        cx.report.arguments_checked += 1;
        if let Some(s) = attrs.get(key) {
            if !s.configurable() {
                cx.find(
                    &here,
                    Kind::UnconfigurableAttribute,
                    format!("{key:?} is computed by the provider and cannot be set"),
                );
            } else if let Some(why) = type_mismatch(&s.ty, a.expr()) {
                cx.find(&here, Kind::TypeMismatch, why);
            } else if let Some(why) = invalid_value(s, a.expr()) {
                cx.find(&here, Kind::InvalidValue, why);
            }
        } else if blocks.contains_key(key) {
            cx.find(
                &here,
                Kind::ArgumentWhereBlockExpected,
                format!("an argument named {key:?} is not expected here; {key} is a block"),
            );
        } else if resource_level && meta.attributes.contains_key(key) {
            // count, for_each, provider, depends_on.
        } else {
            cx.find(
                &here,
                Kind::UnsupportedArgument,
                format!("an argument named {key:?} is not expected here"),
            );
        }
    }
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for b in body.blocks() {
        let id = b.identifier();
        let n = counts.entry(id).or_default();
        let here = format!("{at}.{id}[{n}]");
        *n += 1;
        let schema_block = blocks
            .get(id)
            .or_else(|| resource_level.then(|| meta.blocks.get(id)).flatten());
        match schema_block {
            Some(nb) => {
                if b.labels().len() != nb.labels {
                    cx.find(
                        &here,
                        Kind::WrongLabels,
                        format!(
                            "block {id:?} takes {} labels, has {}",
                            nb.labels,
                            b.labels().len()
                        ),
                    );
                }
                if !nb.open {
                    let s = Shape {
                        attrs: &nb.attributes,
                        blocks: &nb.blocks,
                        plan: &nb.plan_checks,
                    };
                    check_body(cx, &here, b.body(), &s, false);
                }
            }
            None if attrs.contains_key(id) => cx.find(
                &here,
                Kind::BlockWhereArgumentExpected,
                format!("blocks of type {id:?} are not expected here; {id} is an argument"),
            ),
            None => cx.find(
                &here,
                Kind::UnsupportedBlock,
                format!("blocks of type {id:?} are not expected here"),
            ),
        }
    }
    for (name, s) in attrs {
        if s.required && !seen.contains(name) {
            cx.find(
                &format!("{at}.{name}"),
                Kind::MissingRequiredArgument,
                format!("the argument {name:?} is required, but no definition was found"),
            );
        }
    }
    plan_checks(cx, at, body, shape.plan, &counts);
    let all_blocks = blocks
        .iter()
        .chain(meta.blocks.iter().filter(|_| resource_level));
    for (name, nb) in all_blocks {
        let n = counts.get(name.as_str()).copied().unwrap_or(0);
        if nb.max_items > 0 && n > nb.max_items {
            cx.find(
                &format!("{at}.{name}"),
                Kind::TooManyBlocks,
                format!(
                    "no more than {} {name:?} blocks are allowed, found {n}",
                    nb.max_items
                ),
            );
        }
        if n < nb.min_items {
            cx.find(
                &format!("{at}.{name}"),
                Kind::TooFewBlocks,
                format!(
                    "at least {} {name:?} blocks are required, found {n}",
                    nb.min_items
                ),
            );
        }
    }
}

/// Why a literal value cannot be of type `ty`, if it cannot. Expressions that are not
/// literals (references, calls, conditionals) are left alone, as `validate` leaves unknowns.
fn type_mismatch(ty: &str, e: &Expression) -> Option<String> {
    let inner = ty
        .strip_prefix("set(")
        .or_else(|| ty.strip_prefix("list("))
        .and_then(|s| s.strip_suffix(')'));
    match (ty, inner, e) {
        (_, _, Expression::Null) => None,
        ("any" | "reference", _, _) => None,
        (_, Some(inner), Expression::Array(items)) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| type_mismatch(inner, item).map(|w| format!("element {i}: {w}"))),
        (
            _,
            Some(_),
            Expression::Bool(_)
            | Expression::Number(_)
            | Expression::String(_)
            | Expression::Object(_),
        ) => Some(format!("a {ty} is required, found a single value")),
        (_, None, Expression::Array(_) | Expression::Object(_)) if ty != "object" => {
            Some(format!("a {ty} is required, found a collection"))
        }
        ("number", None, Expression::Bool(_)) => Some("a number is required, found a bool".into()),
        ("number", None, Expression::String(s)) if s.parse::<f64>().is_err() => {
            Some(format!("a number is required, found {s:?}"))
        }
        ("bool", None, Expression::Number(_)) => Some("a bool is required, found a number".into()),
        ("bool", None, Expression::String(s)) if s != "true" && s != "false" => {
            Some(format!("a bool is required, found {s:?}"))
        }
        _ => None,
    }
}

/// The resource's plan-time checks, on literal values only (an unknown value is the plan's).
fn plan_checks(
    cx: &mut Ctx<'_>,
    at: &str,
    body: &Body,
    plan: &PlanChecks,
    counts: &BTreeMap<&str, usize>,
) {
    let any = &plan.require_one_of_blocks;
    if !any.is_empty() && !any.iter().any(|b| counts.contains_key(b.as_str())) {
        cx.find(
            at,
            Kind::PlanCheckFailed,
            format!("at least one of {any:?} must be specified"),
        );
    }
    for r in &plan.require {
        let value = body
            .attributes()
            .find(|a| a.key() == r.when)
            .map(|a| a.expr());
        let Some(Expression::String(v)) = value else {
            continue;
        };
        if !r.values.contains(v) {
            continue;
        }
        for name in &r.require {
            if !body.attributes().any(|a| a.key() == name) {
                cx.find(
                    &format!("{at}.{name}"),
                    Kind::PlanCheckFailed,
                    format!("{name:?} is required when {} is {v:?}", r.when),
                );
            }
        }
    }
}

/// Why a literal value fails the schema's validation, if it does.
fn invalid_value(s: &AttrSchema, e: &Expression) -> Option<String> {
    match e {
        Expression::String(v) => {
            if s.non_empty && v.is_empty() {
                return Some("must not be empty".into());
            }
            if !s.one_of.is_empty() {
                let ok = s.one_of.iter().any(|o| {
                    if s.ignore_case {
                        o.eq_ignore_ascii_case(v)
                    } else {
                        o == v
                    }
                });
                if !ok {
                    return Some(format!("{v:?} is not one of {:?}", s.one_of));
                }
            }
            if let Some(max) = s.max_length {
                let n = v.chars().count();
                if n > max {
                    return Some(format!("{n} characters, at most {max} allowed"));
                }
            }
            None
        }
        Expression::Number(n) => {
            let x = n.as_f64()?;
            if s.non_empty && x == 0.0 {
                return Some("must not be 0".into());
            }
            if s.min.is_some_and(|m| x < m) || s.max.is_some_and(|m| x > m) {
                return Some(format!("{x} is outside [{:?}, {:?}]", s.min, s.max));
            }
            None
        }
        Expression::Array(items) if s.non_empty => items
            .iter()
            .position(|item| matches!(item, Expression::String(v) if v.is_empty()))
            .map(|i| format!("element {i} must not be empty")),
        _ => None,
    }
}

fn check_ignore_changes(cx: &mut Ctx<'_>, at: &str, body: &Body, rs: &ResourceSchema) {
    for lc in body.blocks().filter(|b| b.identifier() == "lifecycle") {
        for a in lc
            .body()
            .attributes()
            .filter(|a| a.key() == "ignore_changes")
        {
            let Expression::Array(items) = a.expr() else {
                continue; // `all` or a non-literal: nothing to name-check.
            };
            for item in items {
                let root = match item {
                    Expression::Variable(v) => Some(v.as_str().to_owned()),
                    Expression::Traversal(t) => match &t.expr {
                        Expression::Variable(v) => Some(v.as_str().to_owned()),
                        _ => None,
                    },
                    _ => None,
                };
                if let Some(name) = root {
                    if !rs.attributes.contains_key(&name) && !rs.blocks.contains_key(&name) {
                        cx.find(
                            &format!("{at}.lifecycle.ignore_changes"),
                            Kind::IgnoreChangesUnknown,
                            format!("{name:?} is not an argument of this resource"),
                        );
                    }
                }
            }
        }
    }
}

fn collect_body_exprs<'a>(body: &'a Body, out: &mut Vec<&'a Expression>) {
    for a in body.attributes() {
        // ignore_changes holds bare argument names, checked per resource.
        if a.key() != "ignore_changes" {
            out.push(a.expr());
        }
    }
    for b in body.blocks() {
        collect_body_exprs(b.body(), out);
    }
}

/// `<type>.<name>.<attr>` (and `data.<type>.<name>.<attr>`) references, wherever they sit in
/// an expression.
fn check_references(
    cx: &mut Ctx<'_>,
    e: &Expression,
    declared: &BTreeMap<(String, String), String>,
) {
    match e {
        Expression::Traversal(t) => {
            if let Expression::Variable(root) = &t.expr {
                let names: Vec<&str> = t
                    .operators
                    .iter()
                    .map_while(|op| match op {
                        TraversalOperator::GetAttr(id) => Some(id.as_str()),
                        _ => None,
                    })
                    .collect();
                check_reference(cx, root.as_str(), &names, declared);
            }
            check_references(cx, &t.expr, declared);
            for op in &t.operators {
                if let TraversalOperator::Index(i) = op {
                    check_references(cx, i, declared);
                }
            }
        }
        Expression::Array(items) => items.iter().for_each(|i| check_references(cx, i, declared)),
        Expression::Object(o) => o.values().for_each(|v| check_references(cx, v, declared)),
        Expression::FuncCall(f) => f
            .args
            .iter()
            .for_each(|a| check_references(cx, a, declared)),
        Expression::Parenthesis(p) => check_references(cx, p, declared),
        Expression::Conditional(c) => {
            for x in [&c.cond_expr, &c.true_expr, &c.false_expr] {
                check_references(cx, x, declared);
            }
        }
        // `"${digitalocean_droplet.main.id}"`: the interpolations of a template.
        Expression::TemplateExpr(t) => {
            if let Ok(tpl) = hcl::Template::from_expr(t) {
                for el in tpl.elements() {
                    if let hcl::template::Element::Interpolation(i) = el {
                        check_references(cx, &i.expr, declared);
                    }
                }
            }
        }
        _ => {}
    }
}

fn check_reference(
    cx: &mut Ctx<'_>,
    root: &str,
    names: &[&str],
    declared: &BTreeMap<(String, String), String>,
) {
    let Some(rs) = cx.schema.resources.get(root) else {
        return; // var.*, local.*, data.* (none rendered), path.*: not resource references.
    };
    let path = std::iter::once(root)
        .chain(names.iter().copied())
        .collect::<Vec<_>>()
        .join(".");
    let Some(name) = names.first() else {
        return;
    };
    cx.report.references_checked += 1;
    if !declared.contains_key(&(root.to_owned(), (*name).to_owned())) {
        cx.find(
            &path,
            Kind::UndeclaredResource,
            format!("a managed resource \"{root}\" \"{name}\" has not been declared"),
        );
        return;
    }
    if let Some(attr) = names.get(1) {
        if *attr != "id" && !rs.attributes.contains_key(*attr) && !rs.blocks.contains_key(*attr) {
            cx.find(
                &path,
                Kind::UnsupportedAttributeReference,
                format!(
                    "this object has no argument, nested block, or exported attribute \
                     named {attr:?}"
                ),
            );
        }
    }
}
