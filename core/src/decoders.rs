//! The registry of lineage decoders this binary contains, built at compile time.
//!
//! A task description names each node's decoder by its code offset (see
//! [`crate::closure`]), and the executor turns that offset back into a function
//! pointer and calls it. Calling whatever address a network message names would
//! run arbitrary code on a corrupt or hostile message, so the address is first
//! checked against this registry, and a miss is a decoding error.
//!
//! How the registry is built: decoders are monomorphized per node type, so no
//! list of them can be written by hand. Instead every decoder is named through
//! [`registered_decoder!`], whose inline assembly, compiled into each
//! monomorphized `Encode::decoder`, also emits the decoder's address into the
//! ELF section `ember_decoders` (marked retained, so the linker's garbage
//! collection keeps it). The linker concatenates those entries from every object
//! file and brackets them with `__start_ember_decoders`/`__stop_ember_decoders`:
//! the section is the exact set of decoders any part of the binary can produce,
//! and the pointer the macro returns is the very address it registered. This is
//! the technique of the Linux kernel's exception and jump-label tables.
//!
//! Supported targets: x86-64 and AArch64 Linux (ELF); other targets fail to
//! compile rather than run without the check.

use std::collections::HashSet;
use std::sync::OnceLock;

#[cfg(not(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64"))))]
compile_error!("the lineage decoder registry (core/src/decoders.rs) is written for x86-64 and AArch64 Linux");

// One zero entry, so that the section and its bounds exist even in a binary that
// never names a decoder (a zero is never a decoder's address).
std::arch::global_asm!(".pushsection ember_decoders,\"awR\",@progbits", ".balign 8", ".8byte 0", ".popsection",);

unsafe extern "C" {
    /// First entry of the `ember_decoders` section (defined by the linker).
    static __start_ember_decoders: usize;
    /// One past the last entry of the `ember_decoders` section.
    static __stop_ember_decoders: usize;
}

/// The [`crate::lineage::DecodeFn`] `$decode` (a path such as `Self::decode`),
/// registered as a decoder this binary contains. Every `Encode::decoder` returns
/// its decoder through this macro, or the decoder's nodes cannot be decoded.
macro_rules! registered_decoder {
    ($decode:path) => {{
        // A compile-time check that `$decode` has the decoder signature.
        let _: $crate::lineage::DecodeFn = $decode;
        let address: usize;
        // SAFETY: the assembly only adds an entry to a data section and loads the
        // address of the named function; it touches no memory, stack or flags.
        unsafe {
            #[cfg(target_arch = "x86_64")]
            ::core::arch::asm!(
                ".pushsection ember_decoders,\"awR\",@progbits",
                ".balign 8",
                ".8byte {decode}",
                ".popsection",
                "lea {address}, [rip + {decode}]",
                decode = sym $decode,
                address = out(reg) address,
                options(nostack, nomem, preserves_flags),
            );
            #[cfg(target_arch = "aarch64")]
            ::core::arch::asm!(
                ".pushsection ember_decoders,\"awR\",@progbits",
                ".balign 8",
                ".8byte {decode}",
                ".popsection",
                "adrp {address}, {decode}",
                "add {address}, {address}, :lo12:{decode}",
                decode = sym $decode,
                address = out(reg) address,
                options(nostack, nomem, preserves_flags),
            );
            ::core::mem::transmute::<usize, $crate::lineage::DecodeFn>(address)
        }
    }};
}
pub(crate) use registered_decoder;

/// The addresses of every registered decoder in this process.
fn registry() -> &'static HashSet<usize> {
    static REGISTRY: OnceLock<HashSet<usize>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        // SAFETY: the linker defines both symbols as the bounds of the section,
        // which holds only 8-byte aligned `usize` entries (see the module docs).
        let entries = unsafe {
            let start = &raw const __start_ember_decoders;
            let stop = &raw const __stop_ember_decoders;
            let len = (stop as usize - start as usize) / std::mem::size_of::<usize>();
            std::slice::from_raw_parts(start, len)
        };
        entries.iter().copied().filter(|&address| address != 0).collect()
    })
}

/// Whether `address` is a decoder this binary registered.
pub fn is_registered(address: usize) -> bool {
    registry().contains(&address)
}

/// How many distinct decoders this binary registered.
pub fn registered_count() -> usize {
    registry().len()
}
