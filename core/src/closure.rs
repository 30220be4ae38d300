//! Shipping code to other processes.
//!
//! Every Ember process runs the identical binary (checked by build id when an
//! executor registers), so a monomorphized function is named by its address's
//! offset from a fixed anchor function: the offset is the same in every process
//! even with address-space randomization. Captured state travels separately, as
//! serde bytes: user closures are written with the `Fn!` macro (crate
//! `ember-macros`), which turns `move |x| x + k` into a [`Closure`] holding `k`
//! beside code that captures nothing, so capturing something that cannot be
//! shipped is a compile error naming the captured variable. Plain `fn` items and
//! closures without captures ship as they are: they are zero-sized, so the
//! receiving process needs nothing but their type.
//!
//! Spark's counterpart is `ClosureCleaner` plus Java serialization of the closure
//! object (`org.apache.spark.util.ClosureCleaner`); here the compiler does the
//! cleaning: only what the body names is captured.

use std::marker::PhantomData;

use serde::{Deserializer, Serialize, Serializer, de::Deserialize, de::DeserializeOwned};

/// The call traits of shipped functions. Stable Rust cannot implement
/// `std::ops::Fn` for a struct, so [`Closure`] implements this one, and so does
/// every `std::ops::Fn` of up to four arguments (plain functions and closures).
pub mod traits {
    /// A function called with its arguments as one tuple: `f.call((x,))`.
    pub trait Fn<Args> {
        /// What a call returns.
        type Output;
        /// Calls the function.
        fn call(&self, args: Args) -> Self::Output;
    }

    macro_rules! plain_fn {
        ($($arg:ident),*) => {
            impl<Func, R, $($arg),*> Fn<($($arg,)*)> for Func
            where
                Func: std::ops::Fn($($arg),*) -> R,
            {
                type Output = R;
                #[inline(always)]
                #[allow(non_snake_case)]
                fn call(&self, ($($arg,)*): ($($arg,)*)) -> R {
                    self($($arg),*)
                }
            }
        };
    }
    plain_fn!();
    plain_fn!(A);
    plain_fn!(A, B);
    plain_fn!(A, B, C);
    plain_fn!(A, B, C, D);
}

/// A function Ember can send to executors and call there with `Args` (a tuple):
/// an `Fn!(move |x| …)` closure, a plain `fn` item, or a closure that captures
/// nothing.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be shipped to executors as a function of `{Args}`",
    label = "a closure that captures variables must be written `Fn!(move |…| …)`",
    note = "plain `fn` items and closures that capture nothing are passed as they are; `use ember::prelude::*;` brings `Fn!`"
)]
pub trait SerFn<Args>: traits::Fn<Args> + Ship {}
impl<Args, F: traits::Fn<Args> + Ship> SerFn<Args> for F {}

/// What a shipped function is on the wire: a [`Closure`] writes its captured
/// values; a zero-sized function (a `fn` item, a closure without captures)
/// writes nothing and is rebuilt from its type alone.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be shipped to executors",
    label = "a closure that captures variables must be written `Fn!(move |…| …)`"
)]
pub trait Ship: Sized + Send + Sync + 'static {
    /// Writes what the function carries.
    fn ship<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error>;
    /// Reads what [`Ship::ship`] wrote in a process running this same binary
    /// (task descriptions only): for a zero-sized function it rebuilds the value
    /// from its type, which is right only for a value that was shipped.
    #[doc(hidden)]
    fn unship<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error>;
}

/// A closure written with `Fn!`: the captured values `Env` (a tuple, in the order
/// the macro found them) and the code `G`, a closure that captures nothing and
/// takes `(&Env, Args)`. Only `Env` goes over the wire.
pub struct Closure<Env, G> {
    env: Env,
    code: PhantomData<fn() -> G>,
}

/// The zero-sized value of `G`: a function type with no captures.
#[inline(always)]
fn zero_sized<G>() -> G {
    const {
        assert!(
            std::mem::size_of::<G>() == 0,
            "a closure passed to Ember captures variables: write it `Fn!(move |…| …)` so that what it \
             captures is shipped with it (inside `Fn!`, a capture the macro could not see, for example \
             in a macro's tokens, is named in a list: `Fn!([a, b] move |…| …)`)"
        )
    };
    // SAFETY: `G` has size zero (asserted at compile time above), so reading it
    // through a dangling, aligned pointer reads no memory. Callers only name `G`s
    // that are `Copy` function types (a `fn` item, a closure whose captures are all
    // zero-sized, the code of an `Fn!`) of which the shipping process, running this
    // same binary, held a value: the type is inhabited and a copy of that value is
    // indistinguishable from the one rebuilt here. `Ship::unship` is hidden and
    // documented as such, not a general-purpose constructor.
    unsafe { std::ptr::NonNull::<G>::dangling().read() }
}

impl<Env, G: Copy> Closure<Env, G> {
    /// The closure of captured values `env` and code `code` (which must capture
    /// nothing: checked at compile time). Called by the `Fn!` expansion.
    #[doc(hidden)]
    pub fn new(env: Env, code: G) -> Self {
        let _ = code;
        let _: G = zero_sized();
        Closure { env, code: PhantomData }
    }
}

impl<Env, G, Args, R> traits::Fn<Args> for Closure<Env, G>
where
    G: Copy + std::ops::Fn(&Env, Args) -> R,
{
    type Output = R;
    #[inline(always)]
    fn call(&self, args: Args) -> R {
        zero_sized::<G>()(&self.env, args)
    }
}

impl<Env: Serialize + DeserializeOwned + Send + Sync + 'static, G: Copy + Send + Sync + 'static> Ship
    for Closure<Env, G>
{
    fn ship<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.env.serialize(serializer)
    }
    fn unship<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Closure { env: Env::deserialize(deserializer)?, code: PhantomData })
    }
}

/// Zero-sized functions: `fn` items and closures without captures (`Copy`; a
/// `Closure` is never `Copy`, so the two impls do not meet).
// Not recommended in errors: a closure that captures a `String` is then told to
// use `Fn!`, not that `String` is not `Copy`.
#[diagnostic::do_not_recommend]
impl<F: Copy + Send + Sync + 'static> Ship for F {
    fn ship<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let _: F = zero_sized();
        serializer.serialize_unit()
    }
    fn unship<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <()>::deserialize(deserializer)?;
        Ok(zero_sized())
    }
}

impl<Env: Clone, G> Clone for Closure<Env, G> {
    fn clone(&self) -> Self {
        Closure { env: self.env.clone(), code: PhantomData }
    }
}

impl<Env: std::fmt::Debug, G> std::fmt::Debug for Closure<Env, G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Closure").field("captures", &self.env).field("code", &std::any::type_name::<G>()).finish()
    }
}

/// What a captured value must be: serialized with the closure, rebuilt on the
/// executor, used from task threads. The `Fn!` expansion checks each capture
/// against this, with an error naming the variable.
pub trait Capture: Serialize + DeserializeOwned + Send + Sync + 'static {}
impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> Capture for T {}

/// The type of a value, as a marker (for the `Fn!` expansion).
#[doc(hidden)]
#[inline(always)]
pub fn type_marker<T>(_: &T) -> PhantomData<T> {
    PhantomData
}

/// Ties a reference's type to a marker's (for the `Fn!` expansion: the code's
/// `&Env` parameter is then known while its body is checked).
#[doc(hidden)]
#[inline(always)]
pub fn same_type<T>(_: &T, _: PhantomData<T>) {}

/// `#[serde(with = "ember_core::closure::shipped")]` for a field holding a
/// [`SerFn`] (with `#[serde(bound = "F: Ship")]` on the struct).
pub mod shipped {
    use super::Ship;
    use serde::{Deserializer, Serializer};

    /// Writes the function's captures.
    pub fn serialize<F: Ship, S: Serializer>(f: &F, serializer: S) -> Result<S::Ok, S::Error> {
        f.ship(serializer)
    }

    /// Reads a function written by [`serialize`].
    pub fn deserialize<'de, F: Ship, D: Deserializer<'de>>(deserializer: D) -> Result<F, D::Error> {
        F::unship(deserializer)
    }
}

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
