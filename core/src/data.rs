//! What may flow through an RDD: values that can cross a process boundary.

use serde::{Serialize, de::DeserializeOwned};

/// Element type of an RDD. Serializable (tasks, shuffles and results cross
/// processes), cloneable (cached partitions are iterated more than once) and
/// shareable between task threads.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an RDD element: elements are serialized between processes",
    label = "an element must be `Serialize + DeserializeOwned + Clone + Send + Sync + 'static`",
    note = "elements cross processes by value: use owned types (`String` rather than `&str`)"
)]
pub trait Data: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {}
impl<T> Data for T where T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {}

pub use crate::key::{Key, Ordered};

/// Iterator over one partition. Created and consumed on the task's own thread.
pub type BoxIter<T> = Box<dyn Iterator<Item = T>>;
