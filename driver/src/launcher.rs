//! spark-submit's options for any job binary: `EmberContext::from_args()` reads
//! `--master`, `--conf key=value`, `--name`, `--properties-file`,
//! `--executor-memory`, `--num-executors`, `--executor-cores` and
//! `--driver-memory` from the command line (each with an `EMBER_*` environment
//! fallback) and leaves every argument from the first one it does not know to
//! the job, as spark-submit leaves the arguments after the application jar.
//!
//! Precedence, as in spark-submit (`SparkSubmitArguments`): an explicit option
//! (`--executor-memory 2g`) over `--conf spark.executor.memory=…` over the
//! properties file; `spark.*` keys only are taken from the file. Settings the
//! command line does not give still come from `EMBER_CONF` (see
//! [`crate::EmberContext::new`]).
//!
//! ```text
//! my-job --master 'local-cluster[2,1,512]' --conf spark.ui.enabled=false --name wc  --input in.txt --top 10
//! └───────────────────────── the launcher's ─────────────────────────────────────┘ └──── the job's ───────┘
//! ```

use crate::context::EmberContext;
use clap::{Args, Parser};
use ember_core::config::Conf;
use ember_core::error::{EmberError, Result};
use std::path::PathBuf;

/// The options spark-submit gives every application, as a clap argument group
/// (flatten it into a job's own parser, or let [`EmberContext::from_args`] parse it).
#[derive(Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct SubmitArgs {
    /// Master URL: local[N], local[*], local-cluster[N,CORES,MEMORY_MB] or ember://HOST:PORT
    /// (default local[*]).
    #[arg(long, global = true, env = "EMBER_MASTER", value_name = "URL")]
    pub master: Option<String>,
    /// A setting, KEY=VALUE (repeatable), e.g. --conf spark.executor.memory=2g.
    #[arg(long = "conf", short = 'c', global = true, value_name = "KEY=VALUE")]
    pub conf: Vec<String>,
    /// The application's name (spark.app.name).
    #[arg(long, global = true, env = "EMBER_APP_NAME")]
    pub name: Option<String>,
    /// A file of `spark.*` settings, `key=value` or `key value` per line (`#` and `!` comments),
    /// as spark-defaults.conf.
    #[arg(long, global = true, env = "EMBER_PROPERTIES_FILE", value_name = "FILE")]
    pub properties_file: Option<PathBuf>,
    /// Memory per executor, e.g. 2g (spark.executor.memory).
    #[arg(long, global = true, env = "EMBER_EXECUTOR_MEMORY", value_name = "MEM")]
    pub executor_memory: Option<String>,
    /// Executors to start or wait for (spark.executor.instances).
    #[arg(long, global = true, env = "EMBER_NUM_EXECUTORS", value_name = "N")]
    pub num_executors: Option<u32>,
    /// Task slots per executor (spark.executor.cores).
    #[arg(long, global = true, env = "EMBER_EXECUTOR_CORES", value_name = "N")]
    pub executor_cores: Option<u32>,
    /// Memory of the driver, e.g. 1g (spark.driver.memory).
    #[arg(long, global = true, env = "EMBER_DRIVER_MEMORY", value_name = "MEM")]
    pub driver_memory: Option<String>,
}

/// The launcher's options, then the job's arguments.
#[derive(Parser, Debug)]
#[command(about = "An Ember job. Launcher options (as spark-submit's) come first; the rest are the job's.")]
struct Launcher {
    #[command(flatten)]
    submit: SubmitArgs,
    /// The job's own arguments: everything from the first argument the launcher does not know.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "JOB ARGS")]
    args: Vec<String>,
}

/// What the launcher parsed: the settings, and the job's arguments.
#[derive(Debug, Clone)]
pub struct Launch {
    /// Every setting the options give (`spark.master` only when given).
    pub conf: Conf,
    /// The job's own arguments, in order.
    pub args: Vec<String>,
}

impl SubmitArgs {
    /// The settings these options give, with spark-submit's precedence (module docs).
    ///
    /// # Errors
    /// [`EmberError::Config`] for a `--conf` without `=`, or a properties file
    /// that cannot be read (naming it).
    pub fn to_conf(&self) -> Result<Conf> {
        let mut conf = Conf::new();
        if let Some(file) = &self.properties_file {
            for (key, value) in read_properties(file)? {
                conf.insert(key, value);
            }
        }
        for pair in &self.conf {
            conf.set_pair(pair).map_err(|e| EmberError::Config(format!("--conf: {e}")))?;
        }
        let explicit = [
            ("spark.master", self.master.clone()),
            ("spark.app.name", self.name.clone()),
            ("spark.executor.memory", self.executor_memory.clone()),
            ("spark.executor.instances", self.num_executors.map(|n| n.to_string())),
            ("spark.executor.cores", self.executor_cores.map(|n| n.to_string())),
            ("spark.driver.memory", self.driver_memory.clone()),
        ];
        for (key, value) in explicit {
            if let Some(value) = value {
                conf.insert(key, value);
            }
        }
        Ok(conf)
    }
}

/// The `spark.*` settings of a properties file (Java's `.properties` lines:
/// `key=value`, `key: value` or `key value`; blank lines and `#`/`!` comments skipped).
///
/// # Errors
/// [`EmberError::Config`] naming the file when it cannot be read.
pub fn read_properties(file: &std::path::Path) -> Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| EmberError::Config(format!("--properties-file {}: {e}", file.display())))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|line| {
            let end = line.find(|c: char| c == '=' || c == ':' || c.is_whitespace()).unwrap_or(line.len());
            let key = &line[..end];
            let rest = line[end..].trim_start();
            let value = rest.strip_prefix(['=', ':']).unwrap_or(rest).trim();
            key.starts_with("spark.").then(|| (key.to_string(), value.to_string()))
        })
        .collect())
}

/// Parses the launcher's options from `args` (without the program name).
///
/// # Errors
/// [`EmberError::Config`] with clap's message for a malformed option (`--master`
/// without a value, `--num-executors x`), and as [`SubmitArgs::to_conf`].
pub fn parse<I, S>(args: I) -> Result<Launch>
where
    I: IntoIterator<Item = S>,
    S: Into<std::ffi::OsString> + Clone,
{
    let program = std::env::args_os().next().unwrap_or_else(|| "job".into());
    let launcher = Launcher::try_parse_from(std::iter::once(program).chain(args.into_iter().map(Into::into)))
        .map_err(|e| EmberError::Config(e.to_string()))?;
    Ok(Launch { conf: launcher.submit.to_conf()?, args: launcher.args })
}

impl EmberContext {
    /// A context from the process's command line, as spark-submit would make it
    /// (see [`crate::launcher`]), and the job's own arguments:
    ///
    /// ```no_run
    /// let (sc, args) = ember::EmberContext::from_args().expect("context");
    /// ```
    ///
    /// `--help` prints the launcher's options and exits; so does a malformed option,
    /// with clap's message.
    ///
    /// # Errors
    /// As [`SubmitArgs::to_conf`] and [`EmberContext::new`].
    pub fn from_args() -> Result<(EmberContext, Vec<String>)> {
        let launcher = Launcher::parse();
        let conf = launcher.submit.to_conf()?;
        Ok((EmberContext::new(conf)?, launcher.args))
    }

    /// [`EmberContext::from_args`] over given arguments (without the program name);
    /// a malformed option is an error instead of an exit.
    ///
    /// # Errors
    /// As [`parse`] and [`EmberContext::new`].
    pub fn from_args_of<I, S>(args: I) -> Result<(EmberContext, Vec<String>)>
    where
        I: IntoIterator<Item = S>,
        S: Into<std::ffi::OsString> + Clone,
    {
        let launch = parse(args)?;
        Ok((EmberContext::new(launch.conf)?, launch.args))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch(args: &[&str]) -> Launch {
        parse(args.iter().copied()).unwrap()
    }

    #[test]
    fn launcher_options_then_the_jobs_arguments() {
        let l = launch(&[
            "--master",
            "local[2]",
            "-c",
            "spark.ui.enabled=false",
            "--name=wc",
            "--input",
            "in.txt",
            "--master",
            "x",
        ]);
        assert_eq!(l.conf.get("spark.master"), Some("local[2]"));
        assert_eq!(l.conf.get("spark.ui.enabled"), Some("false"));
        assert_eq!(l.conf.get("spark.app.name"), Some("wc"));
        // From the first unknown argument on, everything is the job's, even a launcher flag.
        assert_eq!(l.args, ["--input", "in.txt", "--master", "x"]);
        let l = launch(&["wordcount", "--top", "3"]);
        assert_eq!(l.args, ["wordcount", "--top", "3"]);
        assert_eq!(l.conf.get("spark.master"), None);
        let l = launch(&["--master", "local[1]", "--", "--name", "job's"]);
        assert_eq!(l.args, ["--name", "job's"]);
    }

    #[test]
    fn explicit_options_win_over_conf_which_wins_over_the_properties_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("spark-defaults.conf");
        std::fs::write(
            &file,
            "# defaults\nspark.executor.memory 512m\nspark.executor.cores=3\n! old\nspark.app.name : from-file\n\
             other.key=ignored\nspark.eventLog.enabled   true\n",
        )
        .unwrap();
        let l = launch(&[
            "--properties-file",
            file.to_str().unwrap(),
            "--conf",
            "spark.executor.cores=4",
            "--conf",
            "spark.executor.memory=1g",
            "--executor-memory",
            "2g",
            "--num-executors",
            "3",
            "--driver-memory",
            "1500m",
        ]);
        assert_eq!(l.conf.get("spark.executor.memory"), Some("2g"));
        assert_eq!(l.conf.get("spark.executor.cores"), Some("4"));
        assert_eq!(l.conf.get("spark.executor.instances"), Some("3"));
        assert_eq!(l.conf.get("spark.driver.memory"), Some("1500m"));
        assert_eq!(l.conf.get("spark.app.name"), Some("from-file"));
        assert_eq!(l.conf.get("spark.eventLog.enabled"), Some("true"));
        assert_eq!(l.conf.get("other.key"), None);
        assert!(l.args.is_empty());
    }

    #[test]
    fn malformed_options_are_clear_errors() {
        let err = parse(["--conf", "novalue"]).unwrap_err().to_string();
        assert!(err.contains("--conf") && err.contains("\"novalue\"") && err.contains("key=value"), "{err}");
        let err = parse(["--num-executors", "many"]).unwrap_err().to_string();
        assert!(err.contains("--num-executors"), "{err}");
        let err = parse(["--master"]).unwrap_err().to_string();
        assert!(err.contains("--master"), "{err}");
        let err = parse(["--properties-file", "/no/such/file"]).unwrap_err().to_string();
        assert!(err.contains("/no/such/file"), "{err}");
    }
}
