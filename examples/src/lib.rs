//! The seed jobs, benchmarks and data generators behind the `ember-examples`
//! binary. Each job takes a context and its parameters and returns the JSON
//! object the binary prints as its last line.

pub mod jobs;

use ember::Result;

/// A 64-bit finalizer (murmur3's fmix64): the examples' deterministic pseudo-random
/// numbers, keys and checksums.
pub fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    x = (x ^ (x >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// Waits (bounded) for `path` to exist; announces the wait on stderr so a test
/// driving this process knows the job reached that point.
pub fn wait_for_file(path: &str, timeout: std::time::Duration) -> Result<()> {
    ember_core::console::announce(format_args!("ember: paused; waiting for {path}"));
    let deadline = std::time::Instant::now() + timeout;
    while !std::path::Path::new(path).exists() {
        if std::time::Instant::now() >= deadline {
            return Err(ember::EmberError::Invalid(format!("gave up waiting for {path} after {timeout:?}")));
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Ok(())
}
