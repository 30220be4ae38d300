//! Local properties (Spark's `SparkContext.setLocalProperty`): settings of the
//! jobs that one thread submits, kept per thread so that jobs submitted
//! concurrently from other threads are not affected.
//!
//! Ember reads one today, [`LONG_RUNNING`]. Others are kept and read back
//! unchanged, as Spark keeps any key.

use super::EmberContext;
use ember_core::error::{EmberError, Result};
use std::cell::RefCell;
use std::collections::HashMap;

/// `ember.job.longRunning`: `true` makes every task of the jobs this thread
/// submits a long-running task (see `TaskDescription::long_running`): it runs on a
/// thread of its own and holds no task slot of its executor. Streaming receivers
/// run this way; Spark's hold a core each for their whole life.
pub const LONG_RUNNING: &str = "ember.job.longRunning";

thread_local! {
    static PROPERTIES: RefCell<HashMap<String, String>> = RefCell::new(HashMap::new());
}

impl EmberContext {
    /// Sets (`Some`) or clears (`None`) a property of the jobs this thread
    /// submits from now on (Spark's `setLocalProperty`). The properties belong to
    /// the thread, not to this context: a thread keeps them for every context.
    ///
    /// Errors: a value Ember cannot read for a key it reads (`ember.job.longRunning`
    /// takes `true` or `false`); nothing is changed then.
    pub fn set_local_property(&self, key: &str, value: Option<&str>) -> Result<()> {
        if let Some(v) = value
            && key == LONG_RUNNING
            && v.parse::<bool>().is_err()
        {
            return Err(EmberError::Config(format!("local property {key}: expected true or false, got {v:?}")));
        }
        PROPERTIES.with(|p| {
            let mut p = p.borrow_mut();
            match value {
                Some(v) => p.insert(key.to_string(), v.to_string()),
                None => p.remove(key),
            }
        });
        Ok(())
    }

    /// The value of a local property of this thread (Spark's `getLocalProperty`).
    pub fn local_property(&self, key: &str) -> Option<String> {
        PROPERTIES.with(|p| p.borrow().get(key).cloned())
    }
}

/// Whether this thread set the boolean property `key` to `true`.
pub(crate) fn is_set(key: &str) -> bool {
    PROPERTIES.with(|p| p.borrow().get(key).is_some_and(|v| v == "true"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_belong_to_the_thread_that_set_them() {
        let sc = EmberContext::local(1).unwrap();
        sc.set_local_property("spark.job.description", Some("nightly")).unwrap();
        sc.set_local_property(LONG_RUNNING, Some("true")).unwrap();
        assert_eq!(sc.local_property("spark.job.description").as_deref(), Some("nightly"));
        assert!(is_set(LONG_RUNNING));
        let other = std::thread::spawn(|| is_set(LONG_RUNNING)).join().unwrap();
        assert!(!other, "another thread does not see this thread's properties");
        sc.set_local_property(LONG_RUNNING, None).unwrap();
        assert!(!is_set(LONG_RUNNING));
        sc.set_local_property("spark.job.description", None).unwrap();
        assert_eq!(sc.local_property("spark.job.description"), None);
    }

    #[test]
    fn a_value_ember_cannot_read_is_refused_and_changes_nothing() {
        let sc = EmberContext::local(1).unwrap();
        let err = sc.set_local_property(LONG_RUNNING, Some("yes")).unwrap_err().to_string();
        assert!(err.contains("ember.job.longRunning") && err.contains("\"yes\""), "{err}");
        assert_eq!(sc.local_property(LONG_RUNNING), None);
    }
}
