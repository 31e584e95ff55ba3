//! Reading one value of a table: typed getters that report a located problem and move on.

use super::*;

impl<'s> Cx<'s> {
    pub(super) fn err(
        &mut self,
        code: Code,
        span: Range<usize>,
        msg: impl Into<String>,
        help: impl Into<Option<String>>,
    ) {
        let d = self.src.diag(code, Severity::Error, span, msg, help.into());
        self.diags.push(d);
    }

    /// Open a table: record spans of its keys, report unknown ones with a did-you-mean.
    pub(super) fn open<'a, 'i>(
        &mut self,
        t: &'a DeTable<'i>,
        path: String,
        span: Range<usize>,
        known: &[&str],
    ) -> Tbl<'a, 'i> {
        self.spans.insert(path.clone(), span.clone());
        if self.too_many_keys(t, &path) {
            return Tbl { t, path, span };
        }
        for (k, v) in t.iter() {
            let kp = join(&path, k.get_ref());
            let kspan = k.span();
            self.spans
                .insert(kp, kspan.start..v.span().end.max(kspan.end));
            if !known.contains(&k.get_ref().as_ref()) {
                let name = k.get_ref().as_ref();
                let suggestion = known
                    .iter()
                    .map(|c| (strsim::jaro_winkler(name, c), *c))
                    .filter(|(s, _)| *s > 0.8)
                    .max_by(|a, b| a.0.total_cmp(&b.0))
                    .map(|(_, c)| c);
                // Quoted keys may hold anything: escape them for the terminal.
                let shown: String = name
                    .chars()
                    .take(64)
                    .collect::<String>()
                    .escape_debug()
                    .to_string();
                let table = self.table_label(&path);
                let (msg, help) = match suggestion {
                    Some(c) => (
                        format!("unknown key `{shown}` in {table}"),
                        format!("did you mean `{c}`?"),
                    ),
                    None => (
                        format!("unknown key `{shown}` in {table}"),
                        format!("known keys here: {}", known.join(", ")),
                    ),
                };
                self.err(Code::Cfg002, kspan, msg, Some(help));
            }
        }
        Tbl { t, path, span }
    }

    /// One CFG004 for a table with more keys than any config needs, instead of one diagnostic
    /// per key: 100k unknown keys would otherwise be 100k lines of output.
    pub(super) fn too_many_keys(&mut self, t: &DeTable<'_>, path: &str) -> bool {
        let Some((k, _)) = t.iter().nth(MAX_TABLE_KEYS) else {
            return false;
        };
        let table = self.table_label(path);
        self.err(
            Code::Cfg004,
            k.span(),
            format!(
                "{table} has {} keys; the limit is {MAX_TABLE_KEYS}",
                t.len()
            ),
            Some("this is not an alembic.toml table; check that this is the right file".to_owned()),
        );
        true
    }

    pub(super) fn get<'a, 'i>(&self, tb: &Tbl<'a, 'i>, key: &str) -> Option<&'a Value<'i>> {
        tb.t.get(key)
    }

    pub(super) fn missing(&mut self, tb: &Tbl<'_, '_>, key: &str, help: &str) {
        if self.syntax_broken {
            return;
        }
        let span = tb.span.clone();
        self.err(
            Code::Cfg003,
            span,
            format!(
                "missing required field `{key}` in {}",
                self.table_label(&tb.path)
            ),
            Some(help.to_owned()),
        );
    }

    /// `[droplet]`, or `[[workload]] #2 (`gateway`)` for a workload table.
    pub(super) fn table_label(&self, path: &str) -> String {
        if path.starts_with("workload.") {
            describe_path(path, &self.workload_names)
        } else {
            table_label(path)
        }
    }

    pub(super) fn describe(&self, path: &str) -> String {
        describe_path(path, &self.workload_names)
    }

    pub(super) fn wrong_type(&mut self, v: &Value<'_>, key_path: &str, expected: &str) {
        let what = self.describe(key_path);
        self.err(
            Code::Cfg004,
            v.span(),
            format!(
                "{what} must be {expected}, found {}",
                type_name(v.get_ref())
            ),
            None,
        );
    }

    /// A string field, checked by `parse`; problems reported with `code`.
    pub(super) fn string<T>(
        &mut self,
        tb: &Tbl<'_, '_>,
        key: &str,
        required: Option<&str>,
        code: Code,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        let Some(v) = self.get(tb, key) else {
            if let Some(help) = required {
                self.missing(tb, key, help);
            }
            return None;
        };
        self.string_value(v, &join(&tb.path, key), code, parse)
    }

    pub(super) fn string_value<T>(
        &mut self,
        v: &Value<'_>,
        path: &str,
        code: Code,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        match v.get_ref() {
            DeValue::String(s) => {
                if s.len() > MAX_STRING {
                    let what = self.describe(path);
                    self.err(
                        Code::Cfg004,
                        v.span(),
                        format!(
                            "{what} is {} bytes long; the limit is {MAX_STRING}",
                            s.len()
                        ),
                        None,
                    );
                    return None;
                }
                match parse(s) {
                    Ok(t) => Some(t),
                    Err(msg) => {
                        let what = self.describe(path);
                        self.err(code, v.span(), format!("invalid {what}: {msg}"), None);
                        None
                    }
                }
            }
            _ => {
                self.wrong_type(v, path, "a string");
                None
            }
        }
    }

    pub(super) fn integer(&mut self, tb: &Tbl<'_, '_>, key: &str) -> Option<(i64, Range<usize>)> {
        let v = self.get(tb, key)?;
        match v.get_ref() {
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Some((n, v.span())),
                Err(_) => {
                    let what = self.describe(&join(&tb.path, key));
                    self.err(
                        Code::Cfg004,
                        v.span(),
                        format!("{what} is out of range"),
                        None,
                    );
                    None
                }
            },
            _ => {
                self.wrong_type(v, &join(&tb.path, key), "an integer");
                None
            }
        }
    }

    pub(super) fn port(&mut self, tb: &Tbl<'_, '_>, key: &str) -> Option<Port> {
        let (n, span) = self.integer(tb, key)?;
        match Port::new(n) {
            Ok(p) => Some(p),
            Err(m) => {
                let what = self.describe(&join(&tb.path, key));
                self.err(Code::Cfg004, span, format!("invalid {what}: {m}"), None);
                None
            }
        }
    }

    pub(super) fn boolean(&mut self, tb: &Tbl<'_, '_>, key: &str) -> Option<bool> {
        let v = self.get(tb, key)?;
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.wrong_type(v, &join(&tb.path, key), "true or false");
                None
            }
        }
    }

    /// An array of strings, each checked by `parse`; duplicates reported as CFG005.
    pub(super) fn string_list<T: PartialEq>(
        &mut self,
        tb: &Tbl<'_, '_>,
        key: &str,
        code: Code,
        dedup: bool,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Vec<T> {
        let Some(v) = self.get(tb, key) else {
            return Vec::new();
        };
        let path = join(&tb.path, key);
        let DeValue::Array(items) = v.get_ref() else {
            self.wrong_type(v, &path, "an array of strings");
            return Vec::new();
        };
        // Duplicate detection is quadratic and every entry ends up in generated files: a
        // 100k-entry list took 49 s to refuse before this limit.
        if let Some(item) = items.get(MAX_LIST_ITEMS) {
            let what = self.describe(&path);
            self.err(
                Code::Cfg004,
                item.span(),
                format!(
                    "{what} has {} entries; the limit is {MAX_LIST_ITEMS}",
                    items.len()
                ),
                None,
            );
            return Vec::new();
        }
        let mut out: Vec<T> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let ip = format!("{path}.{i}");
            self.spans.insert(ip.clone(), item.span());
            if let Some(t) = self.string_value(item, &ip, code, &parse) {
                if dedup && out.contains(&t) {
                    let what = self.describe(&path);
                    self.err(
                        Code::Cfg005,
                        item.span(),
                        format!("duplicate entry in {what}"),
                        Some("remove the repeated entry".to_owned()),
                    );
                    continue;
                }
                out.push(t);
            }
        }
        out
    }

    pub(super) fn sub_table<'a, 'i>(
        &mut self,
        tb: &Tbl<'a, 'i>,
        key: &str,
        known: &[&str],
        required: bool,
    ) -> Option<Tbl<'a, 'i>> {
        let Some(v) = self.get(tb, key) else {
            if required && !self.syntax_broken {
                let span = tb.span.start..tb.span.start;
                self.err(
                    Code::Cfg003,
                    span,
                    format!("missing required table `[{key}]`"),
                    Some(format!(
                        "add a [{key}] table; `alembic init` writes a complete example"
                    )),
                );
            }
            return None;
        };
        match v.get_ref() {
            DeValue::Table(t) => Some(self.open(t, join(&tb.path, key), v.span(), known)),
            _ => {
                self.wrong_type(v, key, "a table");
                None
            }
        }
    }
}
