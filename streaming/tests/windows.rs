//! Every windowed operation and update_state_by_key against a sequential
//! reference over random batches (empty ones included), on local[2]. The same
//! checks run on a local-cluster in windows_cluster.rs.

mod common;

use common::reference::{batches_strategy, check_all};
use ember::prelude::*;
use proptest::prelude::*;
use std::sync::OnceLock;

fn local() -> &'static EmberContext {
    static SC: OnceLock<EmberContext> = OnceLock::new();
    SC.get_or_init(|| EmberContext::new(Conf::new().master("local[2]")).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn windowed_operations_and_state_match_a_sequential_reference_on_local(
        batches in batches_strategy(),
        length in 1usize..4,
        slide in 1usize..3,
    ) {
        check_all(local(), &batches, length, slide)?;
    }
}
