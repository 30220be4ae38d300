//! The checks of windows.rs on a local-cluster of real executor processes.
//! Executors run this very binary (tasks name code by offsets into it), so it
//! has its own main: `ember::entry` serves tasks when started as an executor.

mod common;

use common::reference::{batches_strategy, check_all};
use ember::prelude::*;
use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestRunner};

const CASES: u32 = 6;

fn main() {
    ember::entry(|| {
        let sc = EmberContext::new(Conf::new().master("local-cluster[2,1,256]")).expect("local-cluster");
        let mut runner = TestRunner::new(Config { cases: CASES, ..Config::default() });
        let strategy = (batches_strategy(), 1usize..4, 1usize..3);
        let result = runner.run(&strategy.boxed(), |(batches, length, slide)| check_all(&sc, &batches, length, slide));
        sc.stop();
        match result {
            Ok(()) => println!("windows_cluster: {CASES} cases on local-cluster[2,1,256]\n1 passed, 0 failed"),
            Err(e) => {
                println!("windows_cluster: {e}\n0 passed, 1 failed");
                std::process::exit(1);
            }
        }
    })
}
