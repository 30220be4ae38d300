//! `#[derive(Key)]` and `#[derive(Ordered)]`: a job's own types as keys and
//! sortable values, field by field, as Spark compares a case class: equal when
//! every field is equal (each by its own `Key`, so an `f64` field follows
//! `java.lang.Double.equals`), ordered by the first field that differs (for an
//! enum: by variant, in declaration order, then by fields).

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{Data, DeriveInput, Fields, GenericParam, Ident, parse_quote};

/// Which trait is derived: its path and the bound put on type parameters.
#[derive(Clone, Copy)]
enum Derived {
    Key,
    Ordered,
}

impl Derived {
    fn path(self) -> TokenStream {
        match self {
            Derived::Key => quote!(::ember::Key),
            Derived::Ordered => quote!(::ember::Ordered),
        }
    }
}

/// `impl ::ember::Key`: `key_hash` feeds every field (an enum's variant index
/// first), `key_eq` compares every field.
pub(crate) fn key(input: DeriveInput) -> syn::Result<TokenStream> {
    let (header, shapes) = prepare(&input, Derived::Key)?;
    let hash_arms = shapes.iter().map(|s| {
        let (pattern, names) = s.pattern("a");
        let index = s.index;
        quote! { #pattern => {
            ::core::hash::Hasher::write_usize(state, #index);
            #( ::ember::Key::key_hash(#names, state); )*
        } }
    });
    let eq_arms = shapes.iter().map(|s| {
        let (left, a) = s.pattern("a");
        let (right, b) = s.pattern("b");
        quote! { (#left, #right) => true #( && ::ember::Key::key_eq(#a, #b) )* }
    });
    let fallback = (shapes.len() > 1).then(|| quote! { _ => false, });
    Ok(quote! {
        #header {
            #[inline]
            fn key_hash<__EmberH: ::core::hash::Hasher>(&self, state: &mut __EmberH) {
                match self { #(#hash_arms)* }
            }
            #[inline]
            fn key_eq(&self, other: &Self) -> bool {
                match (self, other) { #(#eq_arms,)* #fallback }
            }
        }
    })
}

/// `impl ::ember::Ordered`: by variant (declaration order), then field by field.
pub(crate) fn ordered(input: DeriveInput) -> syn::Result<TokenStream> {
    let (header, shapes) = prepare(&input, Derived::Ordered)?;
    let same_arms = shapes.iter().map(|s| {
        let (left, a) = s.pattern("a");
        let (right, b) = s.pattern("b");
        quote! { (#left, #right) => {
            #(
                match ::ember::Ordered::compare(#a, #b) {
                    ::core::cmp::Ordering::Equal => {}
                    unequal => return unequal,
                }
            )*
            ::core::cmp::Ordering::Equal
        } }
    });
    let index_arms = shapes.iter().map(|s| {
        let pattern = s.wildcard();
        let index = s.index;
        quote! { #pattern => #index }
    });
    let fallback = (shapes.len() > 1).then(|| {
        quote! {
            _ => {
                let index = |v: &Self| -> usize { match v { #(#index_arms,)* } };
                ::core::cmp::Ord::cmp(&index(self), &index(other))
            }
        }
    });
    Ok(quote! {
        #header {
            #[inline]
            fn compare(&self, other: &Self) -> ::core::cmp::Ordering {
                match (self, other) { #(#same_arms)* #fallback }
            }
        }
    })
}

/// One struct or enum variant: how to name it in a pattern, and its fields.
struct Shape {
    path: TokenStream,
    index: usize,
    fields: Fields,
}

impl Shape {
    /// A pattern binding every field to `<prefix><i>`, and those names.
    fn pattern(&self, prefix: &str) -> (TokenStream, Vec<Ident>) {
        let path = &self.path;
        let names: Vec<Ident> = (0..self.fields.len()).map(|i| format_ident!("__ember_{}{}", prefix, i)).collect();
        let pattern = match &self.fields {
            Fields::Named(named) => {
                let members = named.named.iter().map(|f| f.ident.as_ref().expect("named field"));
                quote! { #path { #(#members: #names),* } }
            }
            Fields::Unnamed(_) => quote! { #path ( #(#names),* ) },
            Fields::Unit => quote! { #path },
        };
        (pattern, names)
    }

    /// A pattern matching the variant whatever its fields.
    fn wildcard(&self) -> TokenStream {
        let path = &self.path;
        match &self.fields {
            Fields::Named(_) => quote! { #path { .. } },
            Fields::Unnamed(_) => quote! { #path ( .. ) },
            Fields::Unit => quote! { #path },
        }
    }
}

/// The impl header (each type parameter bound by the trait, `Self: Data`) and
/// the shapes to match on.
fn prepare(input: &DeriveInput, derived: Derived) -> syn::Result<(TokenStream, Vec<Shape>)> {
    let name = &input.ident;
    let shapes: Vec<Shape> = match &input.data {
        Data::Struct(s) => vec![Shape { path: quote!(#name), index: 0, fields: s.fields.clone() }],
        Data::Enum(e) => {
            if e.variants.is_empty() {
                return Err(syn::Error::new_spanned(name, "an enum without variants has no values to compare"));
            }
            e.variants
                .iter()
                .enumerate()
                .map(|(index, v)| {
                    let variant = &v.ident;
                    Shape { path: quote!(#name::#variant), index, fields: v.fields.clone() }
                })
                .collect()
        }
        Data::Union(u) => {
            return Err(syn::Error::new_spanned(
                u.union_token,
                "a union cannot be a key: derive for a struct or an enum",
            ));
        }
    };
    let trait_path = derived.path();
    let mut generics = input.generics.clone();
    let bounded: Vec<Ident> = generics
        .params
        .iter()
        .filter_map(|p| match p {
            GenericParam::Type(t) => Some(t.ident.clone()),
            _ => None,
        })
        .collect();
    let where_clause = generics.make_where_clause();
    for param in bounded {
        where_clause.predicates.push(parse_quote!(#param: #trait_path));
    }
    where_clause.predicates.push(parse_quote!(Self: ::ember::Data));
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    Ok((quote! { impl #impl_generics #trait_path for #name #ty_generics #where_clause }, shapes))
}
