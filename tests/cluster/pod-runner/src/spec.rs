//! Pure parts of the pod runner: turning a pod's container spec into a local
//! process launch (paths, environment, Service names), and turning a process
//! exit into container status. Nothing here talks to the API server.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// Maps paths inside the container image to local paths, e.g.
/// `/opt/ember/bin` → `target/debug`. The longest matching prefix wins; a
/// prefix matches a whole path component (`/opt/ember/bin` does not match
/// `/opt/ember/binaries`).
#[derive(Debug, Clone, Default)]
pub struct PathMap {
    entries: Vec<(String, PathBuf)>,
}

impl PathMap {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, image_prefix: &str, local: impl Into<PathBuf>) {
        let prefix = image_prefix.trim_end_matches('/').to_string();
        self.entries.push((prefix, local.into()));
        self.entries.sort_by_key(|e| std::cmp::Reverse(e.0.len()));
    }

    /// Parses `IMAGE_PREFIX=LOCAL_DIR`.
    pub fn add_spec(&mut self, spec: &str) -> Result<(), String> {
        let (from, to) =
            spec.split_once('=').ok_or_else(|| format!("path map {spec:?}: expected IMAGE_PREFIX=LOCAL_DIR"))?;
        if !from.starts_with('/') {
            return Err(format!("path map {spec:?}: the image prefix must be absolute"));
        }
        self.add(from, to);
        Ok(())
    }

    /// Maps one path-like string; anything that does not start with a mapped
    /// prefix is returned unchanged. A `local://` scheme (Spark's way of naming
    /// a file inside the image) is kept off the mapped path.
    pub fn map(&self, s: &str) -> String {
        let (scheme, path) = match s.strip_prefix("local://") {
            Some(rest) => ("local://", rest),
            None => ("", s),
        };
        for (prefix, local) in &self.entries {
            if let Some(rest) = path.strip_prefix(prefix.as_str())
                && (rest.is_empty() || rest.starts_with('/'))
            {
                return format!("{scheme}{}{rest}", local.display());
            }
        }
        s.to_string()
    }
}

/// Expands `$(VAR)` references the way the kubelet does: a reference to a
/// variable defined earlier is replaced, `$$` is a literal `$`, and an
/// unresolvable reference is left as written.
pub fn expand_vars(value: &str, defined: &[(String, String)]) -> String {
    let lookup = |name: &str| defined.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let bytes = value.as_bytes();
    let mut out = String::with_capacity(value.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' && i + 1 < bytes.len() {
            if bytes[i + 1] == b'$' {
                out.push('$');
                i += 2;
                continue;
            }
            if bytes[i + 1] == b'('
                && let Some(close) = value[i + 2..].find(')')
            {
                let name = &value[i + 2..i + 2 + close];
                match lookup(name) {
                    Some(v) => out.push_str(v),
                    None => out.push_str(&value[i..i + 3 + close]),
                }
                i += 3 + close;
                continue;
            }
        }
        let ch = value[i..].chars().next().expect("in bounds");
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// A Service name resolvable to an address: `<name>.<namespace>.svc` and
/// `<name>.<namespace>.svc.cluster.local` both resolve to `address`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAddress {
    pub name: String,
    pub namespace: String,
    pub address: String,
}

fn is_dns_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'.'
}

/// Replaces every Service DNS name in `value` by its address. There is no
/// cluster DNS here, so this is how pods reach a Service: the runner rewrites
/// the names in env values and arguments before it starts the process.
/// Returns the rewritten string and the names it could not resolve (names of
/// the form `<x>.<ns>.svc` for which no address is known).
pub fn rewrite_service_names(value: &str, services: &[ServiceAddress]) -> (String, Vec<String>) {
    let mut out = String::with_capacity(value.len());
    let mut unresolved = Vec::new();
    let bytes = value.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        // Candidate DNS names start at a token boundary.
        if is_dns_char(bytes[i]) && (i == 0 || !is_dns_char(bytes[i - 1])) {
            let end = (i..bytes.len()).find(|&j| !is_dns_char(bytes[j])).unwrap_or(bytes.len());
            let token = value[i..end].trim_end_matches('.');
            let token_end = i + token.len();
            let name = token.strip_suffix(".cluster.local").unwrap_or(token);
            if let Some(stem) = name.strip_suffix(".svc") {
                let parts: Vec<&str> = stem.split('.').collect();
                if parts.len() == 2 && !parts[0].is_empty() && !parts[1].is_empty() {
                    match services.iter().find(|s| s.name == parts[0] && s.namespace == parts[1]) {
                        Some(s) => out.push_str(&s.address),
                        None => {
                            unresolved.push(token.to_string());
                            out.push_str(token);
                        }
                    }
                    i = token_end;
                    continue;
                }
            }
            out.push_str(&value[i..token_end]);
            i = token_end;
            continue;
        }
        let ch = value[i..].chars().next().expect("in bounds");
        out.push(ch);
        i += ch.len_utf8();
    }
    (out, unresolved)
}

/// Replaces the wildcard address `0.0.0.0` (as a whole dotted token) by
/// `ip`. Each pod here shares the machine's network, so "listen on all of
/// the pod's interfaces" becomes "listen on the pod's own loopback address";
/// two pods can then both listen on the same port, as in a cluster.
pub fn rewrite_wildcard_address(value: &str, ip: &str) -> String {
    const ANY: &str = "0.0.0.0";
    let is_addr_char = |c: Option<char>| c.is_some_and(|c| c.is_ascii_digit() || c == '.');
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    let mut prev: Option<char> = None;
    while let Some(pos) = rest.find(ANY) {
        let before = rest[..pos].chars().last().or(prev);
        let after = rest[pos + ANY.len()..].chars().next();
        out.push_str(&rest[..pos]);
        if is_addr_char(before) || is_addr_char(after) {
            out.push_str(&rest[pos..pos + 1]);
            prev = Some('0');
            rest = &rest[pos + 1..];
        } else {
            out.push_str(ip);
            prev = Some('0');
            rest = &rest[pos + ANY.len()..];
        }
    }
    out.push_str(rest);
    out
}

/// The scheduler's resource fit, for the one node: why a pod whose containers request more
/// CPU or memory in total than the node's `capacity` cannot be scheduled, in
/// kube-scheduler's words ("0/1 nodes are available: 1 Insufficient memory."). Other pods'
/// requests are not counted: tests run many small pods at once on this one "node".
pub fn unschedulable(
    spec: &k8s_openapi::api::core::v1::PodSpec,
    capacity: &BTreeMap<String, String>,
) -> Option<String> {
    let mut short = Vec::new();
    for resource in ["cpu", "memory"] {
        let requested: f64 = spec
            .containers
            .iter()
            .filter_map(|c| c.resources.as_ref()?.requests.as_ref()?.get(resource))
            .filter_map(|q| parse_quantity(&q.0))
            .sum();
        let available = capacity.get(resource).and_then(|q| parse_quantity(q)).unwrap_or(f64::INFINITY);
        if requested > available {
            short.push(format!("1 Insufficient {resource}"));
        }
    }
    (!short.is_empty()).then(|| format!("0/1 nodes are available: {}.", short.join(", ")))
}

/// Parses a Kubernetes resource quantity (`500m`, `2`, `1Gi`, `128974848`,
/// `129e6`, `123Mi`) into its value in base units.
pub fn parse_quantity(q: &str) -> Option<f64> {
    let q = q.trim();
    if q.is_empty() {
        return None;
    }
    const SUFFIXES: &[(&str, f64)] = &[
        ("Ki", 1024.0),
        ("Mi", 1024.0 * 1024.0),
        ("Gi", 1024.0 * 1024.0 * 1024.0),
        ("Ti", 1024.0 * 1024.0 * 1024.0 * 1024.0),
        ("Pi", 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0),
        ("Ei", 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    for (suffix, mult) in SUFFIXES {
        if let Some(num) = q.strip_suffix(suffix) {
            // `1E3` style exponents end in a digit, so `E` here is the suffix.
            return num.parse::<f64>().ok().map(|n| n * mult);
        }
    }
    q.parse::<f64>().ok()
}

/// The value a `resourceFieldRef` yields: the resource's value divided by the
/// divisor (default 1), rounded up, as the kubelet does.
pub fn resource_field_value(
    resource: &str,
    divisor: Option<&str>,
    limits: &BTreeMap<String, String>,
    requests: &BTreeMap<String, String>,
    node_capacity: &BTreeMap<String, String>,
) -> Result<String, String> {
    let (kind, name) = resource.split_once('.').ok_or_else(|| format!("unsupported resource {resource:?}"))?;
    let raw = match kind {
        // A container without a limit sees the node's allocatable amount.
        "limits" => limits.get(name).or_else(|| node_capacity.get(name)),
        "requests" => requests.get(name).or_else(|| limits.get(name)).or_else(|| node_capacity.get(name)),
        _ => None,
    }
    .ok_or_else(|| format!("unsupported resource {resource:?}"))?;
    let value = parse_quantity(raw).ok_or_else(|| format!("bad quantity {raw:?}"))?;
    let div = match divisor {
        Some(d) => parse_quantity(d).ok_or_else(|| format!("bad divisor {d:?}"))?,
        None => 1.0,
    };
    if div <= 0.0 {
        return Err(format!("divisor must be positive, got {divisor:?}"));
    }
    // Guard against 0.1+0.2 style noise before rounding up.
    let v = value / div;
    let rounded = (v - 1e-9).ceil().max(if v > 0.0 { 1.0 } else { 0.0 });
    Ok(format!("{}", rounded as i64))
}

/// Equality-based label selector match (a Service's `spec.selector`). An empty
/// selector matches nothing, as for Services.
pub fn selector_matches(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Hands out loopback addresses for pods: `base`, `base+1`, ... skipping
/// `.0` and `.255` in the last octet, staying inside 127.0.0.0/8.
#[derive(Debug, Clone)]
pub struct IpAllocator {
    next: u32,
}

impl IpAllocator {
    pub fn new(first: Ipv4Addr) -> Self {
        assert_eq!(first.octets()[0], 127, "pod addresses must be loopback");
        Self { next: u32::from(first) }
    }

    pub fn allocate(&mut self) -> Ipv4Addr {
        loop {
            let candidate = self.next;
            self.next = self.next.wrapping_add(1);
            if self.next >> 24 != 127 {
                self.next = u32::from(Ipv4Addr::new(127, 1, 0, 1));
            }
            let last = candidate & 0xff;
            if last != 0 && last != 255 {
                return Ipv4Addr::from(candidate);
            }
        }
    }
}

/// The last `max_lines` lines of `data`, at most `max_bytes` bytes (cut at a
/// character boundary), as lossy UTF-8: the container's termination message.
pub fn tail_lines(data: &[u8], max_lines: usize, max_bytes: usize) -> String {
    let trimmed = data.strip_suffix(b"\n").unwrap_or(data);
    let mut start = trimmed.len();
    let mut lines = 0;
    while start > 0 && lines < max_lines {
        match trimmed[..start].iter().rposition(|&b| b == b'\n') {
            Some(pos) => {
                lines += 1;
                if lines == max_lines {
                    start = pos + 1;
                    break;
                }
                start = pos;
            }
            None => {
                start = 0;
                break;
            }
        }
    }
    let mut tail = &data[start..];
    if tail.len() > max_bytes {
        tail = &tail[tail.len() - max_bytes..];
    }
    let s = String::from_utf8_lossy(tail).into_owned();
    // A byte cut may have split a character: drop the replacement char at the start.
    s.trim_start_matches('\u{fffd}').to_string()
}

/// How a container process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// Exit code as Kubernetes reports it: the code, or 128+signal.
    pub code: i32,
    pub signal: Option<i32>,
}

impl Exit {
    pub fn from_status(status: std::process::ExitStatus) -> Self {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(code), _) => Exit { code, signal: None },
            (None, Some(sig)) => Exit { code: 128 + sig, signal: Some(sig) },
            (None, None) => Exit { code: 255, signal: None },
        }
    }

    /// The `reason` of a terminated container state.
    pub fn reason(&self) -> &'static str {
        if self.code == 0 { "Completed" } else { "Error" }
    }
}

/// The pod phase once every container has exited (restartPolicy `Never`, or
/// `OnFailure` after success).
pub fn terminal_phase(exits: &[Exit]) -> &'static str {
    if exits.iter().all(|e| e.code == 0) { "Succeeded" } else { "Failed" }
}

/// Whether a container that exited should be started again.
pub fn should_restart(restart_policy: Option<&str>, exit: Exit) -> bool {
    match restart_policy.unwrap_or("Always") {
        "Always" => true,
        "OnFailure" => exit.code != 0,
        _ => false,
    }
}

/// Log file of one container: `<dir>/<pod>.<container>.log`.
pub fn log_path(dir: &Path, pod: &str, container: &str) -> PathBuf {
    dir.join(format!("{pod}.{container}.log"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn path_map_longest_prefix_and_components() {
        let mut m = PathMap::new();
        m.add("/opt/ember", "/local/ember");
        m.add("/opt/ember/bin/", "/build/debug");
        assert_eq!(m.map("/opt/ember/bin/ember-examples"), "/build/debug/ember-examples");
        assert_eq!(m.map("/opt/ember/binaries/x"), "/local/ember/binaries/x");
        assert_eq!(m.map("/opt/ember"), "/local/ember");
        assert_eq!(m.map("/opt/emberx"), "/opt/emberx");
        assert_eq!(m.map("local:///opt/ember/bin/job"), "local:///build/debug/job");
        assert_eq!(m.map("/bin/sh"), "/bin/sh");
        assert!(m.add_spec("relative=/x").is_err());
        assert!(m.add_spec("/nothing").is_err());
        m.add_spec("/data=/tmp/data").unwrap();
        assert_eq!(m.map("/data/in.txt"), "/tmp/data/in.txt");
    }

    #[test]
    fn expands_defined_vars_only() {
        let env = vec![("A".to_string(), "1".to_string()), ("B".to_string(), "two".to_string())];
        assert_eq!(expand_vars("x$(A)y$(B)", &env), "x1ytwo");
        assert_eq!(expand_vars("$(MISSING)", &env), "$(MISSING)");
        assert_eq!(expand_vars("$$(A)", &env), "$(A)");
        assert_eq!(expand_vars("cost $5 $(", &env), "cost $5 $(");
        assert_eq!(expand_vars("ünïcode $(A)", &env), "ünïcode 1");
    }

    #[test]
    fn rewrites_service_names() {
        let svcs =
            vec![ServiceAddress { name: "app-driver-svc".into(), namespace: "ns".into(), address: "127.1.0.2".into() }];
        let (v, un) = rewrite_service_names("http://app-driver-svc.ns.svc:7078", &svcs);
        assert_eq!(v, "http://127.1.0.2:7078");
        assert!(un.is_empty());
        let (v, _) = rewrite_service_names("app-driver-svc.ns.svc.cluster.local.", &svcs);
        assert_eq!(v, "127.1.0.2.");
        // Other namespaces, partial names and unrelated text stay as they are.
        let (v, un) = rewrite_service_names("x-app-driver-svc.ns.svc other.ns.svc", &svcs);
        assert_eq!(v, "x-app-driver-svc.ns.svc other.ns.svc");
        assert_eq!(un, vec!["x-app-driver-svc.ns.svc", "other.ns.svc"]);
        let (v, un) = rewrite_service_names("app-driver-svc.ns some.host.example", &svcs);
        assert_eq!(v, "app-driver-svc.ns some.host.example");
        assert!(un.is_empty());
        let (v, _) = rewrite_service_names("a=app-driver-svc.ns.svc,b", &svcs);
        assert_eq!(v, "a=127.1.0.2,b");
    }

    #[test]
    fn wildcard_address_becomes_the_pod_address() {
        let ip = "127.1.0.9";
        assert_eq!(rewrite_wildcard_address("ember://0.0.0.0:7078", ip), "ember://127.1.0.9:7078");
        assert_eq!(rewrite_wildcard_address("0.0.0.0", ip), ip);
        assert_eq!(rewrite_wildcard_address("10.0.0.0/8", ip), "10.0.0.0/8");
        assert_eq!(rewrite_wildcard_address("0.0.0.0.1", ip), "0.0.0.0.1");
        assert_eq!(rewrite_wildcard_address("100.0.0.0", ip), "100.0.0.0");
        assert_eq!(rewrite_wildcard_address("a=0.0.0.0,b=0.0.0.0", ip), "a=127.1.0.9,b=127.1.0.9");
        assert_eq!(rewrite_wildcard_address("no address", ip), "no address");
    }

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("500m"), Some(0.5));
        assert_eq!(parse_quantity("2"), Some(2.0));
        assert_eq!(parse_quantity("1Gi"), Some(1073741824.0));
        assert_eq!(parse_quantity("129e6"), Some(129e6));
        assert_eq!(parse_quantity("1k"), Some(1000.0));
        assert_eq!(parse_quantity(""), None);
        assert_eq!(parse_quantity("lots"), None);
    }

    #[test]
    fn resource_fields() {
        let limits = map(&[("cpu", "1500m"), ("memory", "1Gi")]);
        let requests = map(&[("cpu", "250m")]);
        let node = map(&[("cpu", "2"), ("memory", "8Gi")]);
        let f = |r: &str, d: Option<&str>| resource_field_value(r, d, &limits, &requests, &node);
        assert_eq!(f("limits.cpu", None).unwrap(), "2");
        assert_eq!(f("requests.cpu", None).unwrap(), "1");
        assert_eq!(f("requests.cpu", Some("1m")).unwrap(), "250");
        assert_eq!(f("limits.memory", Some("1Mi")).unwrap(), "1024");
        assert_eq!(f("requests.memory", Some("1Mi")).unwrap(), "1024");
        assert_eq!(resource_field_value("limits.memory", None, &map(&[]), &map(&[]), &node).unwrap(), "8589934592");
        assert!(f("limits.gpu", None).is_err());
        assert!(f("bogus", None).is_err());
    }

    #[test]
    fn selectors() {
        let labels = map(&[("app", "x"), ("role", "driver")]);
        assert!(selector_matches(&map(&[("role", "driver")]), &labels));
        assert!(!selector_matches(&map(&[("role", "executor")]), &labels));
        assert!(!selector_matches(&map(&[]), &labels));
    }

    #[test]
    fn allocates_loopback_addresses() {
        let mut a = IpAllocator::new(Ipv4Addr::new(127, 1, 0, 253));
        assert_eq!(a.allocate(), Ipv4Addr::new(127, 1, 0, 253));
        assert_eq!(a.allocate(), Ipv4Addr::new(127, 1, 0, 254));
        assert_eq!(a.allocate(), Ipv4Addr::new(127, 1, 1, 1));
        let mut b = IpAllocator::new(Ipv4Addr::new(127, 255, 255, 254));
        assert_eq!(b.allocate(), Ipv4Addr::new(127, 255, 255, 254));
        assert_eq!(b.allocate(), Ipv4Addr::new(127, 1, 0, 1));
    }

    #[test]
    fn tails() {
        assert_eq!(tail_lines(b"a\nb\nc\n", 2, 100), "b\nc\n");
        assert_eq!(tail_lines(b"a\nb\nc", 2, 100), "b\nc");
        assert_eq!(tail_lines(b"a\nb\nc\n", 10, 100), "a\nb\nc\n");
        assert_eq!(tail_lines(b"", 3, 100), "");
        assert_eq!(tail_lines(b"abcdef\n", 3, 3), "ef\n");
        assert_eq!(tail_lines("xé\n".as_bytes(), 1, 3), "é\n");
        assert_eq!(tail_lines("xé\n".as_bytes(), 1, 2), "\n");
    }

    #[test]
    fn exits_and_phases() {
        use std::os::unix::process::ExitStatusExt;
        let e = Exit::from_status(std::process::ExitStatus::from_raw(3 << 8));
        assert_eq!(e, Exit { code: 3, signal: None });
        assert_eq!(e.reason(), "Error");
        let k = Exit::from_status(std::process::ExitStatus::from_raw(9));
        assert_eq!(k, Exit { code: 137, signal: Some(9) });
        let ok = Exit { code: 0, signal: None };
        assert_eq!(ok.reason(), "Completed");
        assert_eq!(terminal_phase(&[ok, ok]), "Succeeded");
        assert_eq!(terminal_phase(&[ok, e]), "Failed");
        assert!(!should_restart(Some("Never"), e));
        assert!(should_restart(Some("OnFailure"), e));
        assert!(!should_restart(Some("OnFailure"), ok));
        assert!(should_restart(None, ok));
    }
}

#[cfg(test)]
mod fit_tests {
    use super::*;

    #[test]
    fn a_pod_requesting_more_than_the_node_has_is_unschedulable() {
        let capacity =
            BTreeMap::from([("cpu".to_string(), "2".to_string()), ("memory".to_string(), "8Gi".to_string())]);
        let pod = |cpu: &str, memory: &str| -> k8s_openapi::api::core::v1::PodSpec {
            serde_json::from_value(serde_json::json!({"containers": [
                {"name": "a", "resources": {"requests": {"cpu": cpu, "memory": memory}}},
                {"name": "b", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}},
            ]}))
            .unwrap()
        };
        assert_eq!(unschedulable(&pod("1", "512Mi"), &capacity), None);
        assert_eq!(
            unschedulable(&pod("1", "8Gi"), &capacity).as_deref(),
            Some("0/1 nodes are available: 1 Insufficient memory."),
            "the two containers' requests add up"
        );
        assert_eq!(
            unschedulable(&pod("4", "16Gi"), &capacity).as_deref(),
            Some("0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory.")
        );
    }
}
