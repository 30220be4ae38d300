//! A lineage edge that is dropped without recursion.
//!
//! Dropping the last handle of an RDD drops its parent, which drops its parent,
//! and so on: with 20,000 chained `map`s the default drop glue nests 20,000
//! calls deep on whatever thread lets go of the RDD (a user's main thread, a
//! 2 MiB test thread) and overflows it. [`Parent`] instead hands the edge to a
//! per-thread queue that the outermost drop empties in a loop, so letting go of
//! a lineage of any depth takes constant stack.

use super::{RddBase, RddNode};
use crate::data::Data;
use std::cell::RefCell;
use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::sync::Arc;

/// A node's handle on one of its parents; derefs to the `Arc` it wraps.
pub struct Parent<T: Data>(ManuallyDrop<Arc<dyn RddNode<T>>>);

impl<T: Data> Parent<T> {
    pub fn new(rdd: Arc<dyn RddNode<T>>) -> Self {
        Self(ManuallyDrop::new(rdd))
    }

    /// Another handle on the parent, e.g. for a [`super::Dependency`].
    pub fn arc(&self) -> Arc<dyn RddNode<T>> {
        Arc::clone(&self.0)
    }
}

impl<T: Data> Deref for Parent<T> {
    type Target = Arc<dyn RddNode<T>>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<T: Data> Drop for Parent<T> {
    fn drop(&mut self) {
        // SAFETY: `self.0` is taken exactly once, here, and never used after.
        let rdd: Arc<dyn RddNode<T>> = unsafe { ManuallyDrop::take(&mut self.0) };
        release(rdd);
    }
}

thread_local! {
    /// Edges waiting to be dropped by the outermost [`release`] on this thread;
    /// `None` when no release is running.
    static PENDING: RefCell<Option<Vec<Arc<dyn RddBase>>>> = const { RefCell::new(None) };
}

/// Drops `rdd`; if that ends a node whose parents are [`Parent`]s, they are
/// queued and dropped by this same loop instead of nested calls.
fn release(rdd: Arc<dyn RddBase>) {
    let mut rdd = Some(rdd);
    let queued = PENDING.try_with(|pending| match pending.borrow_mut().as_mut() {
        Some(queue) => {
            queue.extend(rdd.take());
            true
        }
        None => false,
    });
    // Queued for the running loop; or the thread's locals are being torn down
    // and `rdd` drops in place when it goes out of scope.
    if !matches!(queued, Ok(false)) {
        return;
    }
    PENDING.with(|pending| *pending.borrow_mut() = Some(Vec::new()));
    drop(rdd);
    while let Some(next) = PENDING.with(|pending| pending.borrow_mut().as_mut().and_then(Vec::pop)) {
        drop(next);
    }
    PENDING.with(|pending| *pending.borrow_mut() = None);
}
