//! Finding what a closure captures, and rewriting each use into a read of the
//! shipped environment.
//!
//! A name is a capture when the closure's body reads it as a value, it is not
//! bound inside the closure (parameters, `let`, `match` arms, `for`, `if let`,
//! nested closures), and it looks like a variable: it starts with a lower-case
//! letter or `_`, it is not called (`parse(x)` is a function), and it has no
//! turbofish. An explicit list (`Fn!([a, b] move |…| …)`) replaces the guess.
//! Every use of capture number `i` becomes `__ember_env.i`, a place expression
//! of the captured value's type read through a reference to the environment.
//!
//! Macro invocations are read as comma-separated expressions (`vec!`, `format!`,
//! `assert!`, most user macros), as `expr; expr` (`vec![x; n]`) or as
//! `matches!(expr, pattern if guard)`. Names inside a format string (`"{k}"`) are
//! bound next to the invocation. A macro whose tokens are none of these is left
//! as it is; if it names something that could be a capture, the list is required,
//! and the listed names it uses are bound next to it as references to the captures.

use std::collections::HashSet;

use proc_macro2::{Delimiter, Span, TokenStream, TokenTree};
use quote::{ToTokens, quote, quote_spanned};
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::visit_mut::{self, VisitMut};
use syn::{Block, Expr, Ident, Index, Lit, Macro, Pat, Stmt, Token};

use crate::format_names::format_names;

/// Macros whose string arguments are format strings.
const FORMAT_MACROS: &[&str] = &[
    "format",
    "format_args",
    "print",
    "println",
    "eprint",
    "eprintln",
    "write",
    "writeln",
    "panic",
    "assert",
    "assert_eq",
    "assert_ne",
    "debug_assert",
    "debug_assert_eq",
    "debug_assert_ne",
    "unreachable",
    "todo",
    "unimplemented",
    "trace",
    "debug",
    "info",
    "warn",
    "error",
    "bail",
    "anyhow",
    "ensure",
];

const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern", "false", "fn",
    "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "self", "Self",
    "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where", "while",
];

/// The result of reading a closure body.
pub struct Analysis {
    /// The captures, in order of first use (or the explicit list's order).
    pub captures: Vec<Ident>,
    /// Errors to report instead of expanding.
    pub errors: Vec<syn::Error>,
}

/// How a name read by a macro invocation is bound next to it.
enum Binding {
    /// `let k = &env.i;` (a format argument, or a name in a macro's opaque tokens).
    Ref,
    /// `let k = env.i;` (a width or precision: a `usize`).
    Copy,
    /// `let k = Clone::clone(&env.i);` (a nested `Fn!`, which takes ownership).
    Clone,
}

/// Reads and rewrites closure bodies; see the module doc.
pub struct Captures {
    env: Ident,
    explicit: Option<Vec<Ident>>,
    scopes: Vec<HashSet<String>>,
    found: Vec<Ident>,
    errors: Vec<syn::Error>,
}

impl Captures {
    /// A reader whose rewritten uses read `env`; `explicit` is the capture list.
    pub fn new(env: Ident, explicit: Option<Vec<Ident>>) -> Self {
        let found = explicit.clone().unwrap_or_default();
        Captures { env, explicit, scopes: vec![HashSet::new()], found, errors: Vec::new() }
    }

    /// Reads `params` (bound) and rewrites `body`.
    pub fn analyse(mut self, params: &[Pat], body: &mut Expr) -> Analysis {
        for pat in params {
            self.bind(pat);
        }
        self.visit_expr_mut(body);
        Analysis { captures: self.found, errors: self.errors }
    }

    fn bind(&mut self, pat: &Pat) {
        let mut names = Vec::new();
        pattern_names(pat, &mut names);
        self.scopes.last_mut().expect("a scope").extend(names);
    }

    fn is_bound(&self, name: &str) -> bool {
        self.scopes.iter().any(|s| s.contains(name))
    }

    /// The capture index of `ident` read as a value, registering it if new.
    fn capture(&mut self, ident: &Ident) -> Option<usize> {
        let name = ident.to_string();
        if self.is_bound(&name) {
            return None;
        }
        if let Some(list) = &self.explicit {
            return list.iter().position(|c| *c == name);
        }
        if !looks_like_variable(&name) {
            return None;
        }
        Some(match self.found.iter().position(|c| *c == name) {
            Some(i) => i,
            None => {
                self.found.push(ident.clone());
                self.found.len() - 1
            }
        })
    }

    fn read(&self, index: usize, span: Span) -> Expr {
        let env = &self.env;
        let index = Index { index: index as u32, span };
        // A field read binds tighter than anything around it, so no parentheses
        // are needed (and the compiler would warn about them in the user's code).
        syn::parse_quote_spanned! {span=> #env.#index }
    }

    fn scoped(&mut self, f: impl FnOnce(&mut Self)) {
        self.scopes.push(HashSet::new());
        f(self);
        self.scopes.pop();
    }

    /// Rewrites a macro's tokens; returns the bindings to put next to it.
    fn visit_macro(&mut self, mac: &mut Macro) -> Vec<(Ident, usize, Binding)> {
        let name = mac.path.segments.last().map(|s| s.ident.to_string()).unwrap_or_default();
        let mut bindings = Vec::new();
        if name == "Fn" {
            self.nested_fn(mac, &mut bindings);
            return bindings;
        }
        let tokens = mac.tokens.clone();
        let matches_like = name == "matches" || name == "assert_matches" || name == "debug_assert_matches";
        let as_matches = if matches_like { parse_matches.parse2(tokens.clone()).ok() } else { None };
        if let Some(parsed) = as_matches {
            mac.tokens = self.visit_matches(parsed);
        } else if let Ok(mut args) = Punctuated::<Expr, Token![,]>::parse_terminated.parse2(tokens.clone()) {
            for arg in args.iter_mut() {
                match arg {
                    // A named argument (`n = 8`, `count = n`): its name is not a read.
                    Expr::Assign(assign) if is_plain_name(&assign.left) => self.visit_expr_mut(&mut assign.right),
                    arg => self.visit_expr_mut(arg),
                }
            }
            let named: Vec<String> = args
                .iter()
                .filter_map(|arg| match arg {
                    Expr::Assign(assign) if is_plain_name(&assign.left) => {
                        Some(assign.left.to_token_stream().to_string())
                    }
                    _ => None,
                })
                .collect();
            self.format_strings(&name, args.iter(), &named, mac, &mut bindings);
            mac.tokens = args.into_token_stream();
        } else if let Ok((mut a, semi, mut b)) = parse_repeat.parse2(tokens.clone()) {
            self.visit_expr_mut(&mut a);
            self.visit_expr_mut(&mut b);
            mac.tokens = quote! { #a #semi #b };
        } else if let Ok(parsed) = parse_matches.parse2(tokens.clone()) {
            mac.tokens = self.visit_matches(parsed);
        } else {
            self.opaque_tokens(&name, &tokens, mac, &mut bindings);
        }
        bindings
    }

    /// `expr, pattern if guard`: the pattern's names bind in the guard.
    fn visit_matches(&mut self, (mut a, comma, pat, mut guard): Matches) -> TokenStream {
        self.visit_expr_mut(&mut a);
        self.scoped(|this| {
            this.bind(&pat);
            if let Some((_, g)) = &mut guard {
                this.visit_expr_mut(g);
            }
        });
        let guard = guard.map(|(i, g)| quote! { #i #g });
        quote! { #a #comma #pat #guard }
    }

    /// Names read implicitly by string literals: bound next to the invocation in
    /// a format macro; in any other macro, a name that could be a capture needs
    /// the explicit list.
    fn format_strings<'a>(
        &mut self,
        name: &str,
        args: impl Iterator<Item = &'a Expr>,
        named: &[String],
        mac: &Macro,
        bindings: &mut Vec<(Ident, usize, Binding)>,
    ) {
        for arg in args {
            let Expr::Lit(syn::ExprLit { lit: Lit::Str(s), .. }) = arg else { continue };
            for used in format_names(&s.value()).into_iter().filter(|u| !named.contains(&u.name)) {
                // A name that is not an identifier (`x²`) is the compiler's to refuse.
                let Ok(ident) = syn::parse_str::<Ident>(&used.name) else { continue };
                let ident = Ident::new(&ident.to_string(), s.span());
                let guessed = self.explicit.is_none() && !FORMAT_MACROS.contains(&name);
                if guessed {
                    if !self.is_bound(&used.name) && looks_like_variable(&used.name) {
                        self.ambiguous(mac, name, &[used.name]);
                    }
                    continue;
                }
                if let Some(index) = self.capture(&ident) {
                    let binding = if used.count { Binding::Copy } else { Binding::Ref };
                    if !bindings.iter().any(|(b, _, _)| *b == used.name) {
                        bindings.push((ident, index, binding));
                    }
                }
            }
        }
    }

    /// A nested `Fn!`: it captures by itself, so the outer captures it names are
    /// bound (cloned) next to it instead of rewritten inside it.
    fn nested_fn(&mut self, mac: &Macro, bindings: &mut Vec<(Ident, usize, Binding)>) {
        let Ok(input) = syn::parse2::<crate::Input>(mac.tokens.clone()) else { return };
        let probe = Captures {
            env: self.env.clone(),
            explicit: input.explicit.clone(),
            scopes: vec![HashSet::new()],
            found: input.explicit.clone().unwrap_or_default(),
            errors: Vec::new(),
        };
        let params: Vec<Pat> = input.closure.inputs.iter().cloned().collect();
        let mut body = (*input.closure.body).clone();
        let inner = probe.analyse(&params, &mut body);
        for ident in inner.captures {
            if let Some(index) = self.capture(&ident) {
                bindings.push((ident, index, Binding::Clone));
            }
        }
    }

    /// Tokens that are not expressions: the listed captures they name are bound
    /// next to the invocation, by reference (the macro may take them as `$x:ident`);
    /// without a list, a name that could be a capture is an error.
    fn opaque_tokens(
        &mut self,
        name: &str,
        tokens: &TokenStream,
        mac: &Macro,
        bindings: &mut Vec<(Ident, usize, Binding)>,
    ) {
        let mut idents = Vec::new();
        self.candidates(tokens.clone(), &mut idents);
        if self.explicit.is_none() {
            if !idents.is_empty() {
                let names: Vec<String> = idents.iter().map(|i| i.to_string()).collect();
                self.ambiguous(mac, name, &names);
            }
            return;
        }
        for ident in idents {
            if let Some(index) = self.capture(&ident)
                && !bindings.iter().any(|(b, _, _)| *b == ident)
            {
                bindings.push((ident, index, Binding::Ref));
            }
        }
    }

    fn ambiguous(&mut self, mac: &Macro, name: &str, names: &[String]) {
        let listed = names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
        let example = names.join(", ");
        self.errors.push(syn::Error::new_spanned(
            mac,
            format!(
                "`Fn!` cannot tell whether {listed} inside `{name}!` {} captured: name the closure's \
                 captures in a list before it, for example `Fn!([{example}] move |…| …)` (`[]` captures nothing)",
                if names.len() == 1 { "is a variable to be" } else { "are variables to be" }
            ),
        ));
    }

    /// Names in raw tokens that could be captures.
    fn candidates(&self, tokens: TokenStream, out: &mut Vec<Ident>) {
        let trees: Vec<TokenTree> = tokens.into_iter().collect();
        for (i, tree) in trees.iter().enumerate() {
            match tree {
                TokenTree::Group(g) => self.candidates(g.stream(), out),
                TokenTree::Ident(ident) => {
                    let name = ident.to_string();
                    if looks_like_variable(&name)
                        && !PRIMITIVE_TYPES.contains(&name.as_str())
                        && !self.is_bound(&name)
                        && !is_path_or_member(&trees, i)
                        && !out.iter().any(|o| *o == name)
                    {
                        out.push(ident.clone());
                    }
                }
                _ => {}
            }
        }
    }

    /// `mac!(…)` with its bindings: `{ let k = &env.0; mac!(…) }`.
    fn bound_macro(&self, bindings: Vec<(Ident, usize, Binding)>, mac: TokenStream) -> Expr {
        let lets = bindings.into_iter().map(|(ident, index, binding)| {
            let read = self.read(index, ident.span());
            match binding {
                Binding::Ref => quote_spanned! {ident.span()=> let #ident = &#read; },
                Binding::Copy => quote_spanned! {ident.span()=> let #ident = #read; },
                Binding::Clone => quote_spanned! {ident.span()=> let #ident = ::core::clone::Clone::clone(&#read); },
            }
        });
        syn::parse_quote! { { #(#[allow(unused_variables)] #lets)* #mac } }
    }
}

impl VisitMut for Captures {
    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        match expr {
            Expr::Path(p) if p.qself.is_none() && p.path.leading_colon.is_none() && p.path.segments.len() == 1 => {
                let segment = &p.path.segments[0];
                if segment.arguments.is_none() {
                    let ident = segment.ident.clone();
                    if ident == "self"
                        && !self.is_bound("self")
                        && !self.errors.iter().any(|e| e.to_string().contains("`self`"))
                    {
                        self.errors.push(syn::Error::new(
                            ident.span(),
                            "`Fn!` cannot capture `self`: copy what the closure needs into a local first \
                             (`let factor = self.factor;`) and use that",
                        ));
                    }
                    if let Some(index) = self.capture(&ident) {
                        *expr = self.read(index, ident.span());
                    }
                }
            }
            Expr::Call(call) => {
                let named_function = match &*call.func {
                    Expr::Path(p) => p.qself.is_none() && p.path.segments.len() == 1 && self.explicit.is_none(),
                    _ => false,
                };
                if !named_function {
                    self.visit_expr_mut(&mut call.func);
                    if let Expr::Field(read) = &*call.func {
                        // `(env.0)(x)`: without parentheses it would be a method call.
                        *call.func = syn::parse_quote! { (#read) };
                    }
                }
                for arg in call.args.iter_mut() {
                    self.visit_expr_mut(arg);
                }
            }
            Expr::Closure(closure) => self.scoped(|this| {
                for input in &closure.inputs {
                    this.bind(input);
                }
                this.visit_expr_mut(&mut closure.body);
            }),
            Expr::ForLoop(f) => {
                self.visit_expr_mut(&mut f.expr);
                self.scoped(|this| {
                    this.bind(&f.pat);
                    this.visit_block_mut(&mut f.body);
                });
            }
            Expr::If(i) => {
                self.scoped(|this| {
                    this.visit_condition(&mut i.cond);
                    this.visit_block_mut(&mut i.then_branch);
                });
                if let Some((_, e)) = &mut i.else_branch {
                    self.visit_expr_mut(e);
                }
            }
            Expr::While(w) => self.scoped(|this| {
                this.visit_condition(&mut w.cond);
                this.visit_block_mut(&mut w.body);
            }),
            Expr::Match(m) => {
                self.visit_expr_mut(&mut m.expr);
                for arm in m.arms.iter_mut() {
                    self.scoped(|this| {
                        this.bind(&arm.pat);
                        if let Some((_, guard)) = &mut arm.guard {
                            this.visit_expr_mut(guard);
                        }
                        this.visit_expr_mut(&mut arm.body);
                    });
                }
            }
            Expr::Let(l) => {
                // A `let` outside `if`/`while` conditions (rare): its names bind
                // in the enclosing scope.
                self.visit_expr_mut(&mut l.expr);
                self.bind(&l.pat);
            }
            Expr::Struct(s) => {
                for field in s.fields.iter_mut() {
                    if field.colon_token.is_none()
                        && let (syn::Member::Named(name), Expr::Path(_)) = (&field.member, &field.expr)
                        && let Some(index) = self.capture(&name.clone())
                    {
                        field.expr = self.read(index, name.span());
                        field.colon_token = Some(Default::default());
                        continue;
                    }
                    self.visit_expr_mut(&mut field.expr);
                }
                if let Some(rest) = &mut s.rest {
                    self.visit_expr_mut(rest);
                }
            }
            Expr::Macro(m) => {
                let bindings = self.visit_macro(&mut m.mac);
                if !bindings.is_empty() {
                    let mac = m.to_token_stream();
                    *expr = self.bound_macro(bindings, mac);
                }
            }
            _ => visit_mut::visit_expr_mut(self, expr),
        }
    }

    fn visit_block_mut(&mut self, block: &mut Block) {
        self.scoped(|this| {
            for stmt in block.stmts.iter_mut() {
                match stmt {
                    Stmt::Local(local) => {
                        if let Some(init) = &mut local.init {
                            this.visit_expr_mut(&mut init.expr);
                            if let Some((_, diverge)) = &mut init.diverge {
                                this.visit_expr_mut(diverge);
                            }
                        }
                        this.bind(&local.pat);
                    }
                    Stmt::Item(_) => {}
                    Stmt::Expr(e, _) => this.visit_expr_mut(e),
                    Stmt::Macro(m) => {
                        let bindings = this.visit_macro(&mut m.mac);
                        if !bindings.is_empty() {
                            let semi = m.semi_token;
                            let attrs = &m.attrs;
                            let mac = m.mac.to_token_stream();
                            let mac = quote! { #(#attrs)* #mac };
                            let mac = match semi {
                                Some(_) => quote! { #mac; },
                                None => mac,
                            };
                            *stmt = Stmt::Expr(this.bound_macro(bindings, mac), None);
                        }
                    }
                }
            }
        });
    }

    // Names in types and patterns are never captures.
    fn visit_type_mut(&mut self, _: &mut syn::Type) {}
    fn visit_pat_mut(&mut self, _: &mut Pat) {}
    fn visit_item_mut(&mut self, _: &mut syn::Item) {}
}

impl Captures {
    /// An `if`/`while` condition: `let` chains bind for the rest of the chain and
    /// the body (the caller's scope).
    fn visit_condition(&mut self, cond: &mut Expr) {
        match cond {
            Expr::Let(l) => {
                self.visit_expr_mut(&mut l.expr);
                self.bind(&l.pat);
            }
            Expr::Binary(b) if matches!(b.op, syn::BinOp::And(_)) => {
                self.visit_condition(&mut b.left);
                self.visit_condition(&mut b.right);
            }
            _ => self.visit_expr_mut(cond),
        }
    }
}

/// True for a name a variable could have.
fn looks_like_variable(name: &str) -> bool {
    let first = name.chars().next().unwrap_or('A');
    (first.is_lowercase() || first == '_') && name != "_" && !KEYWORDS.contains(&name) && !name.starts_with("__ember")
}

/// True when token `i` is part of a path (`a::b`), a member (`.b`), a macro
/// name (`b!`), a call (`b(…)`) or names an argument (`b = …`, not `b == …`).
fn is_path_or_member(trees: &[TokenTree], i: usize) -> bool {
    let punct = |j: usize, c: char| matches!(trees.get(j), Some(TokenTree::Punct(p)) if p.as_char() == c);
    // `.b` (not `..b`) and `::b` (not `key: b`).
    let member = i >= 1 && punct(i - 1, '.') && !(i >= 2 && punct(i - 2, '.'));
    let path = i >= 2 && punct(i - 1, ':') && punct(i - 2, ':');
    let named = punct(i + 1, '=') && !punct(i + 2, '=');
    let before = member || path || named;
    let after = punct(i + 1, '!')
        || punct(i + 1, ':') && punct(i + 2, ':')
        || matches!(trees.get(i + 1), Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Parenthesis);
    before || after
}

/// Every name a pattern binds.
pub fn pattern_names(pat: &Pat, out: &mut Vec<String>) {
    match pat {
        Pat::Ident(p) => {
            out.push(p.ident.to_string());
            if let Some((_, sub)) = &p.subpat {
                pattern_names(sub, out);
            }
        }
        Pat::Tuple(p) => p.elems.iter().for_each(|e| pattern_names(e, out)),
        Pat::TupleStruct(p) => p.elems.iter().for_each(|e| pattern_names(e, out)),
        Pat::Struct(p) => p.fields.iter().for_each(|f| pattern_names(&f.pat, out)),
        Pat::Slice(p) => p.elems.iter().for_each(|e| pattern_names(e, out)),
        Pat::Or(p) => p.cases.iter().for_each(|e| pattern_names(e, out)),
        Pat::Reference(p) => pattern_names(&p.pat, out),
        Pat::Paren(p) => pattern_names(&p.pat, out),
        Pat::Type(p) => pattern_names(&p.pat, out),
        _ => {}
    }
}

/// True for an expression that is one bare name (`n` in `n = 8`).
fn is_plain_name(expr: &Expr) -> bool {
    matches!(expr, Expr::Path(p) if p.qself.is_none() && p.path.get_ident().is_some())
}

/// Primitive type names, which raw tokens use as types (`x as u64`).
const PRIMITIVE_TYPES: &[&str] = &[
    "bool", "char", "str", "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize",
    "f32", "f64",
];

/// `expr; expr`, as in `vec![x; n]`.
fn parse_repeat(input: ParseStream) -> syn::Result<(Expr, Token![;], Expr)> {
    let a = input.parse()?;
    let semi = input.parse()?;
    let b = input.parse()?;
    if !input.is_empty() {
        return Err(input.error("unexpected tokens"));
    }
    Ok((a, semi, b))
}

/// The arguments of `matches!`: expression, comma, pattern, optional guard.
type Matches = (Expr, Token![,], Pat, Option<(Token![if], Expr)>);

/// `expr, pattern` with an optional `if guard`, as in `matches!`.
fn parse_matches(input: ParseStream) -> syn::Result<Matches> {
    let a = input.parse()?;
    let comma = input.parse()?;
    let pat = Pat::parse_multi_with_leading_vert(input)?;
    let guard = if input.peek(Token![if]) { Some((input.parse()?, input.parse()?)) } else { None };
    let _: Option<Token![,]> = input.parse()?;
    if !input.is_empty() {
        return Err(input.error("unexpected tokens"));
    }
    Ok((a, comma, pat, guard))
}
