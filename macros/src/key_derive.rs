//! `#[derive(Key)]` and `#[derive(Ordered)]`: a job's own types as keys and
//! sortable values, through their `Hash + Eq` and `Ord`.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{DeriveInput, parse_quote};

/// `impl ::ember::Key` delegating to `Hash` and `PartialEq`.
pub(crate) fn key(input: DeriveInput) -> TokenStream {
    let name = &input.ident;
    let mut generics = input.generics.clone();
    generics
        .make_where_clause()
        .predicates
        .push(parse_quote!(Self: ::core::hash::Hash + ::core::cmp::Eq + ::ember::Data));
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    quote! {
        impl #impl_generics ::ember::Key for #name #ty_generics #where_clause {
            #[inline]
            fn key_hash<__EmberH: ::core::hash::Hasher>(&self, state: &mut __EmberH) {
                ::core::hash::Hash::hash(self, state)
            }
            #[inline]
            fn key_eq(&self, other: &Self) -> bool {
                ::core::cmp::PartialEq::eq(self, other)
            }
        }
    }
}

/// `impl ::ember::Ordered` delegating to `Ord`.
pub(crate) fn ordered(input: DeriveInput) -> TokenStream {
    let name = &input.ident;
    let mut generics = input.generics.clone();
    generics.make_where_clause().predicates.push(parse_quote!(Self: ::core::cmp::Ord + ::ember::Data));
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    quote! {
        impl #impl_generics ::ember::Ordered for #name #ty_generics #where_clause {
            #[inline]
            fn compare(&self, other: &Self) -> ::core::cmp::Ordering {
                ::core::cmp::Ord::cmp(self, other)
            }
        }
    }
}
