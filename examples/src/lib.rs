//! The seed jobs, benchmarks and data generators behind the `ember-examples`
//! binary. Each job takes a context and its parameters and returns the JSON
//! object the binary prints as its last line.

pub mod jobs;

use ember::{Conf, EmberContext, Result};

/// How every job reaches its executors: `--master` and `--conf key=value` flags.
#[derive(Debug, Clone, Default)]
pub struct RunConfig {
    pub master: String,
    pub conf: Vec<String>,
    pub app_name: String,
}

impl RunConfig {
    pub fn context(&self) -> Result<EmberContext> {
        let mut conf = Conf::new();
        for pair in &self.conf {
            conf.set_pair(pair)?;
        }
        if !conf.contains("spark.master") {
            conf.insert("spark.master", self.master.clone());
        }
        if !conf.contains("spark.app.name") {
            conf.insert("spark.app.name", self.app_name.clone());
        }
        EmberContext::new(conf)
    }
}
