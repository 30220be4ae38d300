//! Master URLs: where a context's executors come from.

use ember_core::error::{EmberError, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Master {
    /// `local`, `local[N]`, `local[*]`: N task threads in the driver process.
    Local { threads: usize },
    /// `local-cluster[N,CORES,MEMORY_MB]`: N executor processes on loopback.
    LocalCluster { executors: usize, cores: usize, memory_mb: u64 },
    /// `ember://HOST:PORT`: the driver listens there for executors.
    Standalone { host: String, port: u16 },
}

fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

impl Master {
    pub fn parse(url: &str) -> Result<Self> {
        let bad = |reason: &str| EmberError::Master { url: url.to_string(), reason: reason.to_string() };
        let u = url.trim();
        if u == "local" {
            return Ok(Master::Local { threads: 1 });
        }
        if let Some(inner) = u.strip_prefix("local[").and_then(|r| r.strip_suffix(']')) {
            let threads = if inner == "*" {
                cores()
            } else {
                inner
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| bad("expected local[N] with N > 0 or local[*]"))?
            };
            return Ok(Master::Local { threads });
        }
        if let Some(inner) = u.strip_prefix("local-cluster[").and_then(|r| r.strip_suffix(']')) {
            let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
            let [n, c, m] = parts.as_slice() else {
                return Err(bad("expected local-cluster[EXECUTORS,CORES,MEMORY_MB]"));
            };
            let executors = n.parse().ok().filter(|n: &usize| *n > 0).ok_or_else(|| bad("executors must be > 0"))?;
            let cores = c.parse().ok().filter(|n: &usize| *n > 0).ok_or_else(|| bad("cores must be > 0"))?;
            let memory_mb = m.parse().ok().filter(|n: &u64| *n > 0).ok_or_else(|| bad("memory (MB) must be > 0"))?;
            return Ok(Master::LocalCluster { executors, cores, memory_mb });
        }
        if let Some(rest) = u.strip_prefix("ember://") {
            let (host, port) = rest.rsplit_once(':').ok_or_else(|| bad("expected ember://HOST:PORT"))?;
            let port = port.parse().map_err(|_| bad("port is not a number"))?;
            if host.is_empty() {
                return Err(bad("empty host"));
            }
            return Ok(Master::Standalone { host: host.trim_matches(['[', ']']).to_string(), port });
        }
        Err(bad("expected local, local[N], local[*], local-cluster[N,CORES,MEMORY_MB] or ember://HOST:PORT"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form_and_explains_bad_ones() {
        assert_eq!(Master::parse("local").unwrap(), Master::Local { threads: 1 });
        assert_eq!(Master::parse("local[3]").unwrap(), Master::Local { threads: 3 });
        assert!(matches!(Master::parse("local[*]").unwrap(), Master::Local { .. }));
        assert_eq!(
            Master::parse("local-cluster[2,1,512]").unwrap(),
            Master::LocalCluster { executors: 2, cores: 1, memory_mb: 512 }
        );
        assert_eq!(
            Master::parse("ember://0.0.0.0:7078").unwrap(),
            Master::Standalone { host: "0.0.0.0".into(), port: 7078 }
        );
        for bad in ["local[0]", "locl", "local-cluster[2,1]", "ember://nohost", "spark://x:1"] {
            let err = Master::parse(bad).unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
    }
}
