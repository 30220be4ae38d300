//! Shipping code to other processes.
//!
//! Every Ember process runs the identical binary (checked by build id when an
//! executor registers), so a monomorphized function is named by its address's
//! offset from a fixed anchor function: the offset is the same in every process
//! even with address-space randomization. Captured state travels separately, as
//! serde bytes: user closures are written with the `Fn!` macro (serde_closure), which
//! turns `move |x| x + k` into a struct holding `k` that is `Serialize` exactly
//! when `k` is — so capturing something that cannot be shipped is a compile error.

use serde::{Serialize, de::DeserializeOwned};

pub use serde_closure::traits;

/// A user function that can be shipped: `Fn!(move |x| ...)`.
pub trait SerFn<Args>: traits::Fn<Args> + Serialize + DeserializeOwned + Send + Sync + 'static {}
impl<Args, F> SerFn<Args> for F where F: traits::Fn<Args> + Serialize + DeserializeOwned + Send + Sync + 'static {}

/// The fixed point code offsets are measured from. Never inlined, and its body
/// is opaque so it is not folded into another function.
#[inline(never)]
pub fn code_anchor() -> usize {
    std::hint::black_box(0x0065_6d62_6572)
}

/// Offset of a function's address from [`code_anchor`], valid in any process
/// running this same binary.
pub fn code_offset(addr: usize) -> i64 {
    addr as i64 - (code_anchor as fn() -> usize as usize as i64)
}

/// Address of the function at `offset` from [`code_anchor`] in this process;
/// `None` for an offset that leads out of the address space (a corrupt one).
pub fn code_address(offset: i64) -> Option<usize> {
    (code_anchor as fn() -> usize as usize as i64).checked_add(offset).and_then(|a| usize::try_from(a).ok())
}

/// Identity of this build: executors must run exactly the driver's binary, or
/// shipped code offsets would point at the wrong functions.
pub fn build_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        // Streamed: a debug binary is over 100 MB, and reading it whole would
        // set every process's peak memory.
        let checksum = |path: std::path::PathBuf| -> std::io::Result<(u32, u64)> {
            use std::io::Read;
            let mut file = std::fs::File::open(path)?;
            let (mut h, mut len, mut buf) = (crc32fast::Hasher::new(), 0u64, vec![0u8; 1 << 20]);
            loop {
                match file.read(&mut buf)? {
                    0 => return Ok((h.finalize(), len)),
                    n => {
                        h.update(&buf[..n]);
                        len += n as u64;
                    }
                }
            }
        };
        match std::env::current_exe().and_then(checksum) {
            Ok((crc, len)) => format!("{}-{crc:08x}-{len}", env!("CARGO_PKG_VERSION")),
            Err(_) => format!("{}-unknown", env!("CARGO_PKG_VERSION")),
        }
    })
}
