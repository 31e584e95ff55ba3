//! `[[workload]]` tables, their volumes and env, and the references between workloads.

use super::*;

impl<'s> Cx<'s> {
    pub(super) fn workloads(&mut self, root: &Tbl<'_, '_>) -> Option<Vec<Workload>> {
        let Some(v) = root.t.get("workload") else {
            return Some(Vec::new());
        };
        let DeValue::Array(items) = v.get_ref() else {
            self.wrong_type(v, "workload", "an array of tables ([[workload]])");
            return None;
        };
        if items.len() > MAX_WORKLOADS {
            self.err(
                Code::Cfg004,
                v.span(),
                format!("{} workloads; the limit is {MAX_WORKLOADS}", items.len()),
                None,
            );
            return None;
        }
        let n = self.diags.len();
        let mut out = Vec::with_capacity(items.len());
        let mut seen: HashMap<String, usize> = HashMap::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let DeValue::Table(t) = item.get_ref() else {
                self.wrong_type(item, &format!("workload.{i}"), "a table");
                continue;
            };
            if let Some(DeValue::String(n)) = t.get("name").map(|v| v.get_ref()) {
                if let Ok(n) = WorkloadName::parse(n) {
                    self.workload_names.insert(i, n.to_string());
                }
            }
            let tb = self.open(t, format!("workload.{i}"), item.span(), WORKLOAD_KEYS);
            if let Some(w) = self.workload(&tb, i) {
                if let Some(first) = seen.get(w.name.as_str()) {
                    let span = self
                        .spans
                        .get(&format!("workload.{i}.name"))
                        .unwrap_or(item.span());
                    let (line, _) = self.src.locate(
                        self.spans
                            .get(&format!("workload.{first}.name"))
                            .map(|s| s.start)
                            .unwrap_or(0),
                    );
                    self.err(
                        Code::Cfg005,
                        span,
                        format!("duplicate workload name `{}`", w.name),
                        Some(format!(
                            "first defined on line {line}; workload names must be unique"
                        )),
                    );
                    continue;
                }
                seen.insert(w.name.to_string(), i);
                out.push(w);
            }
        }
        self.references(&out);
        if self.diags[n..].iter().any(Diagnostic::is_error) {
            return None;
        }
        Some(out)
    }

    pub(super) fn workload(&mut self, t: &Tbl<'_, '_>, index: usize) -> Option<Workload> {
        let n = self.diags.len();
        let name = self.string(
            t,
            "name",
            Some("every workload needs name = \"...\""),
            Code::Cfg004,
            WorkloadName::parse,
        );
        let plane = self.string(
            t,
            "plane",
            Some("plane = \"host\", \"droplet\" or \"ci\""),
            Code::Cfg004,
            |s| {
                Plane::parse(s)
                    .ok_or_else(|| format!("{s:?} is not one of \"host\", \"droplet\", \"ci\""))
            },
        );
        let exposure = match t.t.get("exposure") {
            Some(_) => self.string(t, "exposure", None, Code::Cfg004, |s| match s {
                "private" => Ok(Exposure::Private),
                "public" => Ok(Exposure::Public),
                _ => Err(format!("{s:?} is not one of \"private\", \"public\"")),
            }),
            None => Some(Exposure::Private),
        };
        let image = self.string(t, "image", None, Code::Cfg004, ImageRef::parse);
        let build = self.string(t, "build", None, Code::Cfg004, BuildContext::parse);
        let command = self.string_list(t, "command", Code::Cfg004, false, Text::parse);
        let port = self.port(t, "port");
        let route = self.string(t, "route", None, Code::Cfg004, Route::parse);
        let health = self.string(t, "health", None, Code::Cfg004, HttpPath::parse);
        let healthcheck = self.string_list(t, "healthcheck", Code::Cfg004, false, Text::parse);
        let env = self.env_table(t);
        let secrets = self.string_list(t, "secrets", Code::Sec002, true, EnvVarName::parse);
        // One name as both a plain value and a secret: which wins would be a renderer's
        // accident, and the plain value may be a secret pasted in the wrong place.
        for name in secrets.iter().filter(|s| env.contains_key(*s)) {
            let span = self
                .spans
                .get(&join(&t.path, &format!("env.{name}")))
                .unwrap_or(t.span.clone());
            let what = self.describe(&join(&t.path, "env"));
            self.err(
                Code::Cfg005,
                span,
                format!("`{name}` is both a plain value in {what} and a secret"),
                Some(format!(
                    "secrets are passed at apply time from the environment; remove `{name}` from env"
                )),
            );
        }
        let depends_on = self.string_list(t, "depends_on", Code::Cfg004, true, WorkloadName::parse);
        let bind = self.string(t, "bind", None, Code::Cfg004, |s| {
            s.parse::<IpAddr>()
                .map_err(|_| format!("{s:?} is not an IP address"))
        });
        let keep_alive = self.boolean(t, "keep_alive");
        let schedule = self.string(t, "schedule", None, Code::Cfg004, Schedule::parse);
        let volumes = self.volumes(t);
        let read_only = self.boolean(t, "read_only");
        let tmpfs = self.string_list(t, "tmpfs", Code::Cfg004, true, ContainerPath::parse);
        let user = self.string(t, "user", None, Code::Cfg004, ContainerUser::parse);
        if self.diags[n..].iter().any(Diagnostic::is_error) {
            return None;
        }
        let (name, plane, exposure) = (name?, plane?, exposure?);
        let path = |k: &str| format!("workload.{index}.{k}");
        let here = |cx: &Self, k: &str| cx.spans.get(&path(k)).unwrap_or(t.span.clone());
        let mut problems: Vec<(Code, String, String, String)> = Vec::new();
        // Container settings: only droplet workloads run in containers.
        let container_only = [
            ("volumes", !volumes.is_empty()),
            ("read_only", read_only.is_some()),
            ("tmpfs", !tmpfs.is_empty()),
            ("user", user.is_some()),
        ];
        let mut not_on = |key: &str, present: bool, why: &str| {
            if present {
                problems.push((
                    Code::Cfg004,
                    key.to_owned(),
                    format!("`{key}` does not apply to {plane} workload `{name}`"),
                    why.to_owned(),
                ));
            }
        };
        match plane {
            Plane::Droplet => {
                not_on(
                    "bind",
                    bind.is_some(),
                    "droplet services are reached only through the edge; remove `bind`",
                );
                not_on(
                    "schedule",
                    schedule.is_some(),
                    "scheduled jobs run on the host plane",
                );
                not_on(
                    "keep_alive",
                    keep_alive.is_some(),
                    "compose restarts droplet services; remove `keep_alive`",
                );
                match (&image, &build) {
                    (None, None) => problems.push((
                        Code::Cfg003,
                        "name".into(),
                        format!("droplet workload `{name}` needs `image` or `build`"),
                        "set image = \"registry/name:tag\", or build = \"path/to/context\" to build it from a Dockerfile".into(),
                    )),
                    (Some(_), Some(_)) => problems.push((
                        Code::Cfg004,
                        "build".into(),
                        format!("droplet workload `{name}` sets both `image` and `build`"),
                        "a workload runs a published image or one built from its context; remove one".into(),
                    )),
                    _ => {}
                }
                if exposure == Exposure::Public && port.is_none() {
                    problems.push((
                        Code::Cfg003,
                        "exposure".into(),
                        format!("public workload `{name}` needs `port` for the edge to proxy to"),
                        "set port = <container port>".into(),
                    ));
                }
            }
            Plane::Host => {
                not_on(
                    "image",
                    image.is_some(),
                    "host workloads run a command; containers belong on the droplet",
                );
                not_on(
                    "build",
                    build.is_some(),
                    "host workloads run a command; containers belong on the droplet",
                );
                not_on(
                    "healthcheck",
                    !healthcheck.is_empty(),
                    "healthcheck applies to droplet containers",
                );
                for (key, present) in container_only {
                    not_on(key, present, "this applies to droplet containers");
                }
                if command.is_empty() {
                    problems.push((
                        Code::Cfg003,
                        "name".into(),
                        format!("host workload `{name}` needs `command`"),
                        "set command = [\"/path/to/program\", \"arg\"]".into(),
                    ));
                }
                if schedule.is_some() && keep_alive == Some(true) {
                    problems.push((
                        Code::Cfg004,
                        "keep_alive".into(),
                        format!("`{name}` sets both `schedule` and `keep_alive = true`"),
                        "a job runs on its schedule; a daemon is kept alive; choose one".into(),
                    ));
                }
            }
            Plane::Ci => {
                not_on(
                    "image",
                    image.is_some(),
                    "a ci workload is a command run on the runner",
                );
                not_on(
                    "build",
                    build.is_some(),
                    "a ci workload is a command run on the runner",
                );
                not_on(
                    "schedule",
                    schedule.is_some(),
                    "ci workloads run on push and pull_request",
                );
                for (key, present) in container_only {
                    not_on(key, present, "this applies to droplet containers");
                }
                if command.is_empty() {
                    problems.push((
                        Code::Cfg003,
                        "name".into(),
                        format!("ci workload `{name}` needs `command`"),
                        "set command = [\"make\", \"lint\"]".into(),
                    ));
                }
                // Rendered into a workflow's run:/env:, where GitHub would evaluate `${{ }}`.
                for (key, has) in [
                    (
                        "command",
                        command.iter().any(|c| c.as_str().contains("${{")),
                    ),
                    ("env", env.values().any(|v| v.as_str().contains("${{"))),
                ] {
                    if has {
                        problems.push((
                            Code::Cfg004,
                            key.into(),
                            format!("`{key}` of ci workload `{name}` contains a GitHub Actions expression (`${{{{`)"),
                            "workflow expressions are evaluated before the shell runs; pass values through plain env or secrets".into(),
                        ));
                    }
                }
            }
        }
        if health.is_some() && port.is_none() {
            problems.push((
                Code::Cfg004,
                "health".into(),
                format!("`health` on `{name}` needs a `port` to probe"),
                "set port or remove health".into(),
            ));
        }
        if route.is_some() && exposure == Exposure::Private && plane == Plane::Droplet {
            problems.push((
                Code::Cfg004,
                "route".into(),
                format!("private workload `{name}` has a route"),
                "routes are for public workloads; set exposure = \"public\" or remove route".into(),
            ));
        }
        if let Some(first) = healthcheck.first() {
            if !matches!(first.as_str(), "CMD" | "CMD-SHELL" | "NONE") {
                problems.push((
                    Code::Cfg004,
                    "healthcheck".into(),
                    "`healthcheck` must start with \"CMD\", \"CMD-SHELL\" or \"NONE\"".into(),
                    "like healthcheck = [\"CMD\", \"/app/healthcheck\"]".into(),
                ));
            }
        }
        let failed = !problems.is_empty();
        for (code, key, msg, help) in problems {
            let span = here(self, &key);
            self.err(code, span, msg, Some(help));
        }
        if failed {
            return None;
        }
        let keep_alive = keep_alive.unwrap_or(plane == Plane::Host && schedule.is_none());
        let bind = match (plane, bind, port) {
            (Plane::Host, None, Some(_)) => Some(IpAddr::from([127, 0, 0, 1])),
            (_, b, _) => b,
        };
        Some(Workload {
            name,
            plane,
            exposure,
            image,
            build,
            command,
            port,
            route,
            health,
            healthcheck,
            env,
            secrets,
            depends_on,
            bind,
            keep_alive,
            schedule,
            volumes,
            read_only: read_only.unwrap_or(true),
            tmpfs,
            user,
            index,
        })
    }

    /// `volumes`: named volumes only. A malformed entry is CFG004; a host path or the docker
    /// socket is EXP008 (policy: either hands the container files of the droplet itself); two
    /// mounts at one container path are CFG005. Each at its item.
    pub(super) fn volumes(&mut self, t: &Tbl<'_, '_>) -> Vec<VolumeMount> {
        let raw = self.string_list(t, "volumes", Code::Cfg004, false, |s| Ok(s.to_owned()));
        let path = join(&t.path, "volumes");
        let items = match self.get(t, "volumes").map(|v| v.get_ref()) {
            Some(DeValue::Array(a)) => a.len(),
            _ => 0,
        };
        // An item that is not a string was reported already; indices would no longer match.
        if raw.len() != items {
            return Vec::new();
        }
        let mut out: Vec<VolumeMount> = Vec::with_capacity(raw.len());
        for (i, s) in raw.iter().enumerate() {
            let item = format!("{path}.{i}");
            let span = self.spans.get(&item).unwrap_or(t.span.clone());
            let what = self.describe(&item);
            match VolumeMount::parse(s) {
                Ok(v) if out.iter().any(|o| o.target == v.target) => {
                    let what = self.describe(&path);
                    self.err(
                        Code::Cfg005,
                        span,
                        format!("two entries in {what} mount at {}", v.target),
                        Some("mount one volume per container path".to_owned()),
                    );
                }
                Ok(v) => out.push(v),
                Err(VolumeError::Malformed(why)) => self.err(
                    Code::Cfg004,
                    span,
                    format!("invalid {what}: {why}"),
                    Some(
                        "like volumes = [\"pgdata:/var/lib/postgresql/data\"] (\":ro\" allowed)"
                            .to_owned(),
                    ),
                ),
                Err(VolumeError::HostPath(why)) => self.err(
                    Code::Exp008,
                    span,
                    format!("{what} refused: {why}"),
                    Some(
                        "use a named volume (name:/path); alembic never bind-mounts droplet paths"
                            .to_owned(),
                    ),
                ),
            }
        }
        out
    }

    pub(super) fn env_table(&mut self, t: &Tbl<'_, '_>) -> BTreeMap<EnvVarName, Text> {
        let mut out = BTreeMap::new();
        let Some(v) = t.t.get("env") else {
            return out;
        };
        let path = join(&t.path, "env");
        let DeValue::Table(env) = v.get_ref() else {
            self.wrong_type(v, &path, "a table of NAME = \"value\"");
            return out;
        };
        if self.too_many_keys(env, &path) {
            return out;
        }
        for (k, val) in env.iter() {
            let kp = join(&path, k.get_ref());
            self.spans
                .insert(kp.clone(), k.span().start..val.span().end);
            let name = match EnvVarName::parse(k.get_ref()) {
                Ok(n) => Some(n),
                Err(m) => {
                    let what = self.describe(&path);
                    self.err(
                        Code::Sec002,
                        k.span(),
                        format!("invalid env var name in {what}: {m}"),
                        None,
                    );
                    None
                }
            };
            let value = match val.get_ref() {
                DeValue::String(_) => self.string_value(val, &kp, Code::Cfg004, Text::parse),
                DeValue::Integer(i) => Text::parse(&i.to_string()).ok(),
                DeValue::Boolean(b) => Text::parse(&b.to_string()).ok(),
                _ => {
                    self.wrong_type(val, &kp, "a string, integer or boolean");
                    None
                }
            };
            if let (Some(n), Some(v)) = (name, value) {
                out.insert(n, v);
            }
        }
        out
    }

    /// depends_on: every name must exist, on the same plane, without cycles.
    pub(super) fn references(&mut self, workloads: &[Workload]) {
        let by_name: HashMap<&str, &Workload> =
            workloads.iter().map(|w| (w.name.as_str(), w)).collect();
        for w in workloads {
            for (j, dep) in w.depends_on.iter().enumerate() {
                let span = self
                    .spans
                    .get(&w.path(&format!("depends_on.{j}")))
                    .unwrap_or(0..0);
                match by_name.get(dep.as_str()) {
                    None => {
                        // Suggestions compare against every name: skip them on huge topologies
                        // where many dangling names would make this quadratic.
                        let hint = by_name
                            .keys()
                            .take(if workloads.len() <= 1000 {
                                usize::MAX
                            } else {
                                0
                            })
                            .map(|c| (strsim::jaro_winkler(dep.as_str(), c), *c))
                            .filter(|(s, _)| *s > 0.8)
                            .max_by(|a, b| a.0.total_cmp(&b.0))
                            .map(|(_, c)| format!("did you mean `{c}`?"))
                            .unwrap_or_else(|| {
                                "depends_on names other workloads of the same plane".to_owned()
                            });
                        self.err(
                            Code::Cfg006,
                            span,
                            format!("`{}` depends on unknown workload `{dep}`", w.name),
                            Some(hint),
                        );
                    }
                    Some(d) if d.name == w.name => {
                        self.err(
                            Code::Cfg006,
                            span,
                            format!("`{}` depends on itself", w.name),
                            None,
                        );
                    }
                    Some(d) if d.plane != w.plane => {
                        self.err(
                            Code::Cfg006,
                            span,
                            format!(
                                "`{}` ({}) depends on `{dep}` on another plane ({})",
                                w.name, w.plane, d.plane
                            ),
                            Some("depends_on orders start-up within one plane".to_owned()),
                        );
                    }
                    Some(_) => {}
                }
            }
        }
        // Cycle detection (iterative DFS; 10k workloads must not recurse deeply).
        let mut state: HashMap<&str, u8> = HashMap::with_capacity(workloads.len());
        let mut reported: HashSet<&str> = HashSet::new();
        for start in workloads {
            if state.contains_key(start.name.as_str()) {
                continue;
            }
            let mut stack: Vec<(&Workload, usize)> = vec![(start, 0)];
            state.insert(start.name.as_str(), 1);
            while let Some((w, i)) = stack.pop() {
                if let Some(dep) = w.depends_on.get(i) {
                    stack.push((w, i + 1));
                    let Some(d) = by_name
                        .get(dep.as_str())
                        .filter(|d| d.plane == w.plane && d.name != w.name)
                    else {
                        continue;
                    };
                    match state.get(d.name.as_str()) {
                        None => {
                            state.insert(d.name.as_str(), 1);
                            stack.push((d, 0));
                        }
                        Some(1) if reported.insert(w.name.as_str()) => {
                            let span = self
                                .spans
                                .get(&w.path(&format!("depends_on.{i}")))
                                .unwrap_or(0..0);
                            self.err(
                                Code::Cfg006,
                                span,
                                format!(
                                    "dependency cycle: `{}` -> `{}` leads back to `{}`",
                                    w.name, d.name, w.name
                                ),
                                Some("remove one depends_on edge of the cycle".to_owned()),
                            );
                        }
                        _ => {}
                    }
                } else {
                    state.insert(w.name.as_str(), 2);
                }
            }
        }
    }
}
