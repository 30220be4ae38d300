//! `ember-pod-runner`: runs the pods of one namespace as local processes
//! against a real Kubernetes API server, standing in for kubelet and
//! scheduler in the cluster tests (see docs/CLUSTER-TESTS.md).
//!
//! - [`spec`]: pure translation of pod specs into process launches and of
//!   process exits into container status;
//! - [`runner`]: the watch/bind/run/status loop;
//! - [`container`]: container mode, each container a `podman` container of its
//!   image (`--podman`);
//! - [`harness`]: guards for tests: a control plane started by
//!   `tests/cluster/cluster.sh` and a running pod runner, both torn down on drop.

pub mod container;
pub mod harness;
pub mod runner;
pub mod spec;
