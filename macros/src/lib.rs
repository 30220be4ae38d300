//! `Fn!`: closures that Ember can ship to executors, re-exported by `ember` (use
//! it as `use ember::prelude::*;`, this crate is not a job's dependency).
//!
//! `Fn!(move |x: i64| x * k)` becomes an `ember::closure::Closure` holding the
//! captured values (`(k,)`, serialized when a task is sent) and code that
//! captures nothing (a zero-sized closure type, rebuilt from its type on the
//! executor, which runs the same binary).
//! The body may use macros, nested closures, `let` patterns and `?`. A nested
//! `move` closure reads captures through a reference to the environment, so
//! it cannot outlive the call (copy a value into a local first to move it).
//!
//! - A captured value must be `Serialize + DeserializeOwned + Send + Sync +
//!   'static`; one that is not is a compile error naming the variable.
//! - Captures are moved into the closure, as with Rust's `move`: a closure that
//!   captures without `move` is refused with a message saying to add it.
//! - Captures are found by reading the body (see `captures.rs`). Where that cannot
//!   be decided, in a macro whose tokens are not expressions, the error asks for
//!   the list: `Fn!([k, table] move |x| …)`, which is then taken as it is.
//!
//! Spark's counterpart is the closure cleaner plus Java serialization
//! (`org.apache.spark.util.ClosureCleaner`); serde_closure (alecmocatta) showed
//! the approach for Rust.

mod captures;
mod format_names;
mod key_derive;

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{ExprClosure, Ident, Pat, Token};

use captures::Captures;

/// The macro's input: an optional capture list, then a closure.
pub(crate) struct Input {
    pub(crate) explicit: Option<Vec<Ident>>,
    pub(crate) closure: ExprClosure,
}

impl Parse for Input {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let explicit = if input.peek(syn::token::Bracket) {
            let list;
            syn::bracketed!(list in input);
            let names = Punctuated::<Ident, Token![,]>::parse_terminated(&list)?;
            let mut unique: Vec<Ident> = Vec::new();
            for name in names {
                if unique.contains(&name) {
                    return Err(syn::Error::new(name.span(), format!("`{name}` is listed twice")));
                }
                unique.push(name);
            }
            Some(unique)
        } else {
            None
        };
        let closure: ExprClosure = input.parse().map_err(|e| {
            syn::Error::new(
                e.span(),
                "`Fn!` takes a closure, optionally after a list of its captures: `Fn!(move |x| …)` or `Fn!([k] move |x| …)`",
            )
        })?;
        let _: Option<Token![,]> = input.parse()?;
        Ok(Input { explicit, closure })
    }
}

/// A closure Ember can ship: `Fn!(move |x: i64| x * k)`; see the crate doc.
#[proc_macro]
#[allow(non_snake_case)]
pub fn Fn(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    match syn::parse::<Input>(input).and_then(expand) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// `#[derive(Key)]`: the type is a key of pair RDDs (`reduce_by_key`,
/// `join`, `distinct`, ...), equal to another when every field is (each field
/// by its own `ember::Key`, so `f64` fields as `java.lang.Double.equals`), as
/// Spark compares a case class. Every field's type must be a key; each type
/// parameter gets the bound `T: ember::Key`. Expands to `impl ember::Key`.
#[proc_macro_derive(Key)]
pub fn derive_key(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    match syn::parse::<syn::DeriveInput>(input).and_then(key_derive::key) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// `#[derive(Ordered)]`: the type sorts (`sort_by_key`, `top`,
/// `take_ordered`, `max`, `min`) by its fields in declaration order, the first
/// that differs deciding (an enum by variant first, in declaration order), as
/// Rust's `#[derive(Ord)]` and Scala's tuple orderings do; each field by its
/// own `ember::Ordered`. Expands to `impl ember::Ordered`.
#[proc_macro_derive(Ordered)]
pub fn derive_ordered(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    match syn::parse::<syn::DeriveInput>(input).and_then(key_derive::ordered) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn expand(input: Input) -> syn::Result<TokenStream> {
    let Input { explicit, closure } = input;
    if let Some(asyncness) = closure.asyncness {
        return Err(syn::Error::new_spanned(asyncness, "`Fn!` closures cannot be `async`"));
    }
    let env = Ident::new("__ember_env", Span::call_site());
    let params: Vec<Pat> = closure.inputs.iter().cloned().collect();
    let mut body = (*closure.body).clone();
    let analysis = Captures::new(env.clone(), explicit).analyse(&params, &mut body);
    if let Some(first) = analysis.errors.first() {
        let mut all = first.clone();
        for e in &analysis.errors[1..] {
            all.combine(e.clone());
        }
        return Err(all);
    }
    let captures = analysis.captures;
    if closure.capture.is_none() && !captures.is_empty() {
        let names = captures.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ");
        return Err(syn::Error::new_spanned(
            closure.or1_token,
            format!(
                "this closure captures {names}: an `Fn!` closure ships what it captures to executors, so it must own \
                 it; add `move`: `Fn!(move |…| …)`"
            ),
        ));
    }

    // One check per capture, so that an error names the variable.
    let checks = captures.iter().enumerate().map(|(i, name)| {
        let check = format_ident!("__EmberCapture{}", i);
        let check_fn = format_ident!("__ember_capture_{}", i);
        let message =
            format!("this `Fn!` closure captures `{name}`, of type `{{Self}}`, which cannot be shipped to executors");
        let label = format!("`{name}` is captured here");
        let note = format!(
            "captured values are serialized with the closure: they must be `Serialize + DeserializeOwned + Send + \
             Sync + 'static` (share large read-only data with a `Broadcast`); if `{name}` is a function or a constant, \
             not a variable, list the closure's captures: `Fn!([…] move |…| …)` (`[]` for none)"
        );
        quote! {
            #[diagnostic::on_unimplemented(
                message = #message,
                label = #label,
                note = #note
            )]
            trait #check {}
            impl<T: ::ember::closure::Capture> #check for T {}
            fn #check_fn<T: #check>(value: T) -> T { value }
        }
    });
    let values = captures.iter().enumerate().map(|(i, name)| {
        let check_fn = format_ident!("__ember_capture_{}", i);
        quote_spanned! {name.span()=> #check_fn(#name) }
    });

    let pats = closure.inputs.iter().map(|p| match p {
        Pat::Type(t) => (*t.pat).clone(),
        p => p.clone(),
    });
    let types: Vec<TokenStream> = closure
        .inputs
        .iter()
        .map(|p| match p {
            Pat::Type(t) => {
                let ty = &t.ty;
                quote! { #ty }
            }
            _ => quote! { _ },
        })
        .collect();
    let attrs = &closure.attrs;
    let output = &closure.output;
    // A block body's statements go into the code's own block (a block inside it
    // would draw the compiler's "unnecessary braces" warning on the user's code).
    let body = match body {
        syn::Expr::Block(block) if block.attrs.is_empty() && block.label.is_none() => {
            let stmts = block.block.stmts;
            quote! { #(#stmts)* }
        }
        body => quote! { #body },
    };
    Ok(quote! {
        {
            #(#checks)*
            let __ember_captures = (#(#values,)*);
            let __ember_env_type = ::ember::closure::type_marker(&__ember_captures);
            ::ember::closure::Closure::new(
                __ember_captures,
                #(#attrs)* move |#env: &_, (#(#pats,)*): (#(#types,)*)| #output {
                    ::ember::closure::same_type(#env, __ember_env_type);
                    #body
                },
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The captures `Fn!(src)` finds, or its error messages.
    fn captures(src: &str) -> Result<Vec<String>, String> {
        let input: Input = syn::parse_str(src).map_err(|e| e.to_string())?;
        let params: Vec<Pat> = input.closure.inputs.iter().cloned().collect();
        let mut body = (*input.closure.body).clone();
        let analysis =
            Captures::new(Ident::new("__ember_env", Span::call_site()), input.explicit).analyse(&params, &mut body);
        match analysis.errors.first() {
            Some(e) => Err(e.to_string()),
            None => Ok(analysis.captures.iter().map(|c| c.to_string()).collect()),
        }
    }

    /// The expansion's text, or its error.
    fn expansion(src: &str) -> Result<String, String> {
        let input: Input = syn::parse_str(src).map_err(|e| e.to_string())?;
        expand(input).map(|t| t.to_string()).map_err(|e| e.to_string())
    }

    #[test]
    fn finds_values_read_by_the_body_and_not_bound_in_it() {
        assert_eq!(captures("move |x: i64| x * k + offset").unwrap(), ["k", "offset"]);
        assert_eq!(captures("|x: i64| x + 1").unwrap(), Vec::<String>::new());
        // Functions, constants, enum variants, paths and turbofish are not captures.
        assert_eq!(
            captures("move |x: u64| parse(x) + MAX + u64::MAX + helper::<u8>() + Some(x).unwrap()").unwrap(),
            Vec::<String>::new()
        );
        // Field and method names are not; the receiver is.
        assert_eq!(captures("move |x: u64| table.get(&x).map(|v| v.len)").unwrap(), ["table"]);
    }

    #[test]
    fn names_bound_inside_are_not_captures() {
        let src = "move |(a, b): (u64, u64)| {
            let (c, d) = (a, b);
            let e = c + k;
            for i in 0..e { let _ = i; }
            if let Some(f) = Some(d) { f } else { match a { g if g > limit => g, _ => h } }
        }";
        assert_eq!(captures(src).unwrap(), ["k", "limit", "h"]);
        // A `let` binds after its initializer: `let k = k + 1` reads the capture.
        assert_eq!(captures("move |x: u64| { let k = k + 1; x + k }").unwrap(), ["k"]);
        // Nested closures bind their parameters and share the captures.
        assert_eq!(
            captures("move |v: Vec<u64>| v.iter().map(|y| y + k).map(move |z| z * n).sum::<u64>()").unwrap(),
            ["k", "n"]
        );
    }

    #[test]
    fn reads_macro_arguments_and_format_strings() {
        assert_eq!(captures("move |x: u64| vec![x; n]").unwrap(), ["n"]);
        assert_eq!(captures("move |x: u64| vec![x, k, x]").unwrap(), ["k"]);
        assert_eq!(captures("move |x: u64| format!(\"{x}{sep}{:w$}\", label)").unwrap(), ["label", "sep", "w"]);
        assert_eq!(captures("move |x: u64| { assert!(x < limit, \"{x} over {limit}\"); x }").unwrap(), ["limit"]);
        assert_eq!(captures("move |x: Option<u64>| matches!(x, Some(y) if y > floor)").unwrap(), ["floor"]);
        assert_eq!(captures("move |x: u64| my_macro!(x, offset)").unwrap(), ["offset"]);
    }

    #[test]
    fn a_macro_it_cannot_read_needs_the_list() {
        let err = captures("move |x: u64| my_macro!(add x to total)").unwrap_err();
        assert!(err.contains("cannot tell whether `add`, `to`, `total` inside `my_macro!`"), "{err}");
        assert!(err.contains("Fn!([add, to, total] move |…| …)"), "{err}");
        // A string in a macro that is not a format macro is not guessed either.
        assert!(captures("move |x: u64| my_log!(\"{level}\")").unwrap_err().contains("`level`"));
        // With the list, exactly the listed names are captured.
        assert_eq!(captures("[total] move |x: u64| my_macro!(add x to total)").unwrap(), ["total"]);
        assert_eq!(captures("[] move |x: u64| x + lowercase_const").unwrap(), Vec::<String>::new());
        assert_eq!(captures("[f] move |x: u64| f(x)").unwrap(), ["f"]);
    }

    #[test]
    fn expansion_reads_captures_from_the_environment() {
        let out = expansion("move |x: i64| x * k").unwrap();
        assert!(out.contains("__ember_capture_0 (k)"), "{out}");
        assert!(out.contains("x * __ember_env . 0"), "{out}");
        let out = expansion("[f] move |x: u64| f(x)").unwrap();
        assert!(out.contains("(__ember_env . 0) (x)"), "{out}");
        let out = expansion("move |x: u64| format!(\"{x:w$}{k}\")").unwrap();
        assert!(out.contains("let w = __ember_env . 0 ;") && out.contains("let k = & __ember_env . 1 ;"), "{out}");
        let out = expansion("move |x: u64| Point { x, k }").unwrap();
        assert!(out.contains("Point { x , k : __ember_env . 0 }"), "{out}");
    }

    #[test]
    fn review_cases() {
        // Named format arguments are not reads; `matches!` patterns bind.
        assert_eq!(captures("move |x: u64| format!(\"{x:>n$}\", n = w)").unwrap(), ["w"]);
        assert_eq!(captures("move |x: Option<u64>| matches!(x, Some(v)) && v2 > 0").unwrap(), ["v2"]);
        // `key: value` and ranges in opaque tokens are seen; `a == b` is not a named argument.
        let err = captures("move |x: u64| json!({\"a\": k, \"b\": 0..n})").unwrap_err();
        assert!(err.contains("`k`, `n`"), "{err}");
        assert_eq!(captures("[k] move |x: u64| json!({\"a\": k})").unwrap(), ["k"]);
        assert!(captures("move |x: u64| x * self.factor").unwrap_err().contains("cannot capture `self`"));
        assert!(captures("[a, a] move |x: u64| x").unwrap_err().contains("`a` is listed twice"));
        // Attributes of a statement macro stay on it.
        let out = expansion("move |x: u64| { #[cfg(debug_assertions)] eprintln!(\"{x} {k}\"); x }").unwrap();
        assert!(out.contains("# [cfg (debug_assertions)] eprintln !"), "{out}");
    }

    #[test]
    fn refuses_what_cannot_ship() {
        let err = expansion("|x: i64| x * k").unwrap_err();
        assert!(err.contains("captures `k`") && err.contains("add `move`"), "{err}");
        assert!(expansion("async |x: i64| x").unwrap_err().contains("cannot be `async`"));
        assert!(expansion("x + 1").unwrap_err().contains("`Fn!` takes a closure"));
    }
}
