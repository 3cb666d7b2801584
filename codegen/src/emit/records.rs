//! Commands, event records and in-memory structures: a value type per entry,
//! and the `Command` and `Event` enums.

use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};

use super::fields::{accessors, cond_expr, enums, field_consts, field_infos, hex};
use crate::expr::Operand;
use crate::model::{Record, RecordKind, Spec};
use crate::names;

fn kind_word(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Command => "command",
        RecordKind::Event => "event record",
        RecordKind::Struct => "structure",
    }
}

fn uses_registers(rec: &Record, i: usize) -> bool {
    rec.illegal[i]
        .cond
        .terms
        .iter()
        .any(|t| matches!(t.operand, Operand::Register(..)))
}

pub fn record(spec: &Spec, rec: &Record) -> TokenStream {
    let ty = format_ident!("{}", names::record_type(rec));
    let name = &rec.name;
    let n = Literal::usize_unsuffixed(rec.words);
    let doc = format!(
        "{name} ({}, {}): {}",
        rec.spec,
        kind_word(rec.kind),
        rec.description
    );
    let res0 = (0..rec.words).map(|w| hex(rec.res0(w)));
    let infos = field_infos(&rec.fields);
    let access = rec
        .fields
        .iter()
        .map(|f| accessors(&rec.name, f, true, &quote!(u64)));
    let enum_items = enums(&rec.name, &rec.fields);
    let bytes = Literal::usize_unsuffixed(rec.words * 8);
    let code = rec.code.map(|c| hex(c as u64));
    let code_items = code.as_ref().map(|c| {
        let (cname, cdoc) = match rec.kind {
            RecordKind::Command => (format_ident!("OPCODE"), "The opcode, bits [7:0] of word 0."),
            _ => (format_ident!("ID"), "The event type, bits [7:0] of word 0."),
        };
        quote! {
            #[doc = #cdoc]
            pub const #cname: u8 = #c;
        }
    });
    let (new_body, code_check) = match &code {
        Some(c) => (
            quote! { let mut w = [0u64; #n]; w[0] = #c as u64; Self(w) },
            quote! {
                if (w[0] & 0xff) as u8 != #c {
                    return Err(crate::DecodeError::WrongCode { name: #name, expected: #c, found: (w[0] & 0xff) as u8 });
                }
            },
        ),
        None => (quote!(Self([0u64; #n])), quote!()),
    };
    let illegal_rules = rec.illegal.iter().enumerate().map(|(i, il)| {
        let cond = &il.text;
        let why = &il.why;
        let regs = uses_registers(rec, i);
        let _ = i;
        quote!(crate::IllegalRule { condition: #cond, why: #why, uses_registers: #regs })
    });
    let illegal_checks = rec.illegal.iter().enumerate().map(|(i, il)| {
        let idx = Literal::usize_unsuffixed(i);
        let e = cond_expr(
            spec,
            &il.cond,
            &rec.fields,
            &quote!(self.0),
            true,
            &quote!(regs),
        );
        if uses_registers(rec, i) {
            quote! {
                if let Some(regs) = regs {
                    if #e { return Some(&Self::ILLEGAL[#idx]); }
                }
            }
        } else {
            quote! { if #e { return Some(&Self::ILLEGAL[#idx]); } }
        }
    });
    let alias_arms = rec.aliases.iter().map(|a| {
        let e = cond_expr(
            spec,
            &a.cond,
            &rec.fields,
            &quote!(self.0),
            true,
            &quote!(regs),
        );
        let an = &a.name;
        quote!(if #e { return #an; })
    });
    let force_code = code
        .as_ref()
        .map(|c| quote!(w[0] = (w[0] & !0xff) | #c as u64;));
    let arbitrary = quote! {
        #[cfg(feature = "fuzzing")]
        impl<'a> arbitrary::Arbitrary<'a> for #ty {
            /// Any value of this kind: random fields, RES0 bits clear.
            fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
                let mut w: [u64; #n] = u.arbitrary()?;
                for (word, res0) in w.iter_mut().zip(Self::RES0) {
                    *word &= !res0;
                }
                #force_code
                Ok(Self(w))
            }
        }
    };
    let family = match rec.kind {
        RecordKind::Command => quote!(cmd),
        RecordKind::Event => quote!(evt),
        RecordKind::Struct => quote!(structs),
    };
    let field_consts = field_consts(&rec.name, &quote!(crate::#family::#ty), &rec.fields);
    quote! {
        #[doc = #doc]
        #[doc(alias = #name)]
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(transparent)]
        pub struct #ty(pub [u64; #n]);

        #enum_items
        #field_consts

        impl #ty {
            /// The architecture's name.
            pub const NAME: &'static str = #name;
            /// Size in 64-bit words.
            pub const WORDS: usize = #n;
            #code_items
            /// Bits of each word that no field covers: RES0.
            pub const RES0: [u64; #n] = [#(#res0),*];
            /// Every field, in spec order.
            pub const FIELDS: &'static [crate::FieldInfo] = #infos;
            /// Conditions under which the architecture makes this value ILLEGAL.
            pub const ILLEGAL: &'static [crate::IllegalRule] = &[#(#illegal_rules),*];

            /// A value with every field zero (and the opcode or type set).
            pub const fn new() -> Self { #new_body }

            /// Checks the opcode or type and the RES0 bits of raw words.
            pub const fn decode(w: [u64; #n]) -> Result<Self, crate::DecodeError> {
                #code_check
                let mut i = 0;
                while i < #n {
                    if w[i] & Self::RES0[i] != 0 {
                        return Err(crate::DecodeError::Res0 { name: #name, word: i, bits: w[i] & Self::RES0[i] });
                    }
                    i += 1;
                }
                Ok(Self(w))
            }

            /// The raw words, as they go into memory (each little-endian).
            pub const fn encode(&self) -> [u64; #n] { self.0 }

            /// Raw words from little-endian bytes, unchecked (see [`Self::decode`]).
            pub fn from_le_bytes(b: &[u8; #bytes]) -> [u64; #n] {
                crate::support::words_from_le(b)
            }

            /// The value as little-endian bytes.
            pub fn to_le_bytes(&self) -> [u8; #bytes] {
                crate::support::words_to_le(&self.0)
            }

            /// The first rule of [`Self::ILLEGAL`] that holds. Rules that read
            /// ID registers are only checked when `regs` is given.
            pub fn illegal_in<R: crate::RegisterValues + ?Sized>(&self, regs: Option<&R>) -> Option<&'static crate::IllegalRule> {
                let _ = regs;
                #(#illegal_checks)*
                None
            }

            /// The first rule of [`Self::ILLEGAL`] that holds on an SMMU with these ID registers.
            pub fn illegal<R: crate::RegisterValues + ?Sized>(&self, regs: &R) -> Option<&'static crate::IllegalRule> {
                self.illegal_in(Some(regs))
            }

            /// The first rule of [`Self::ILLEGAL`] that holds on any SMMU
            /// (the rules that read no ID register).
            pub fn illegal_local(&self) -> Option<&'static crate::IllegalRule> {
                self.illegal_in::<crate::RegisterBank>(None)
            }

            /// The name to show: an alias such as CMD_CFGI_ALL when its form matches.
            pub fn display_name(&self) -> &'static str {
                #(#alias_arms)*
                #name
            }

            #(#access)*
        }

        impl Default for #ty {
            fn default() -> Self { Self::new() }
        }

        impl crate::Record for #ty {
            fn name(&self) -> &'static str { self.display_name() }
            fn fields(&self) -> &'static [crate::FieldInfo] { Self::FIELDS }
            fn words(&self) -> &[u64] { &self.0 }
        }

        impl core::fmt::Debug for #ty {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                crate::support::debug_fields(f, #name, Self::FIELDS, &self.0)
            }
        }

        impl core::fmt::Display for #ty {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                crate::support::display_fields(f, self.display_name(), Self::FIELDS, &self.0)
            }
        }

        #arbitrary
    }
}

/// `Command` or `Event`: one variant per entry, decoded by its first byte.
/// Accessors on the family enum for the fields every record of the family
/// has in the same place with a plain value (an event's StreamID, say).
fn common_fields(recs: &[Record]) -> TokenStream {
    let Some(first) = recs.first() else {
        return TokenStream::new();
    };
    let variants: Vec<_> = recs
        .iter()
        .map(|r| format_ident!("{}", names::variant(r)))
        .collect();
    let plain = |f: &crate::model::Field| f.values.is_empty() && f.values_of.is_none();
    let same = |a: &crate::model::Field, b: &crate::model::Field| {
        a.name == b.name
            && a.word == b.word
            && a.lo == b.lo
            && a.hi == b.hi
            && a.address == b.address
    };
    let accessors = first
        .fields
        .iter()
        // The opcode or type (bits [7:0] of word 0) tells the records apart.
        .filter(|f| plain(f) && !(f.word == 0 && f.lo < 8))
        .filter(|f| {
            recs.iter()
                .all(|r| r.fields.iter().any(|g| same(f, g) && plain(g)))
        })
        .map(|f| {
            let get = format_ident!("{}", names::method(&f.name));
            let ty = if f.width() == 1 && !f.address {
                quote!(bool)
            } else {
                super::fields::raw_type(f)
            };
            let with = format_ident!("with_{}", names::method(&f.name));
            let doc = format!("`{}`, which every record of this kind has.", f.name);
            let with_doc = format!("The record with `{}` replaced.", f.name);
            quote! {
                #[doc = #doc]
                pub const fn #get(&self) -> #ty {
                    match self { #( Self::#variants(v) => v.#get(), )* }
                }
                #[doc = #with_doc]
                #[must_use]
                pub const fn #with(self, x: #ty) -> Self {
                    match self { #( Self::#variants(v) => Self::#variants(v.#with(x)), )* }
                }
            }
        });
    quote!(#(#accessors)*)
}

pub fn family(recs: &[Record], kind: RecordKind) -> TokenStream {
    let (enum_name, n, unknown, doc) = match kind {
        RecordKind::Command => (
            format_ident!("Command"),
            Literal::usize_unsuffixed(2),
            quote!(crate::DecodeError::UnknownOpcode { opcode: code }),
            "A command queue entry of any kind, decoded by its opcode.",
        ),
        _ => (
            format_ident!("Event"),
            Literal::usize_unsuffixed(4),
            quote!(crate::DecodeError::UnknownEvent { id: code }),
            "An event queue record of any kind, decoded by its type.",
        ),
    };
    let variants: Vec<_> = recs
        .iter()
        .map(|r| format_ident!("{}", names::variant(r)))
        .collect();
    let types: Vec<_> = recs
        .iter()
        .map(|r| format_ident!("{}", names::record_type(r)))
        .collect();
    let codes: Vec<_> = recs
        .iter()
        .map(|r| hex(r.code.unwrap_or(0) as u64))
        .collect();
    let docs = recs
        .iter()
        .map(|r| format!("{}: {}", r.name, r.description));
    let arb_last = Literal::u32_unsuffixed(recs.len().saturating_sub(1) as u32);
    let common = common_fields(recs);
    let arb_arms = (0..recs.len()).map(|i| {
        let i32_ = Literal::u32_unsuffixed(i as u32);
        let v = &variants[i];
        quote!(#i32_ => Self::#v(u.arbitrary()?),)
    });
    quote! {
        #[doc = #doc]
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        pub enum #enum_name {
            #( #[doc = #docs] #variants(#types), )*
        }

        impl #enum_name {
            #common
            /// Decodes raw words: unknown codes and set RES0 bits are errors.
            pub const fn decode(w: [u64; #n]) -> Result<Self, crate::DecodeError> {
                let code = (w[0] & 0xff) as u8;
                match code {
                    #( #codes => match #types::decode(w) { Ok(v) => Ok(Self::#variants(v)), Err(e) => Err(e) }, )*
                    _ => Err(#unknown),
                }
            }

            /// The raw words.
            pub const fn encode(&self) -> [u64; #n] {
                match self { #( Self::#variants(v) => v.0, )* }
            }

            /// Bits [7:0] of word 0.
            pub const fn code(&self) -> u8 {
                match self { #( Self::#variants(_) => #codes, )* }
            }

            /// The value as a generic record (name, field table, words).
            pub fn as_record(&self) -> &dyn crate::Record {
                match self { #( Self::#variants(v) => v, )* }
            }

            /// The first ILLEGAL rule that holds (see each type's `illegal_in`).
            pub fn illegal_in<R: crate::RegisterValues + ?Sized>(&self, regs: Option<&R>) -> Option<&'static crate::IllegalRule> {
                match self { #( Self::#variants(v) => v.illegal_in(regs), )* }
            }

            /// The first ILLEGAL rule that holds on any SMMU (no ID register read).
            pub fn illegal_local(&self) -> Option<&'static crate::IllegalRule> {
                self.illegal_in::<crate::RegisterBank>(None)
            }

            /// The first ILLEGAL rule that holds on an SMMU with these ID registers.
            pub fn illegal<R: crate::RegisterValues + ?Sized>(&self, regs: &R) -> Option<&'static crate::IllegalRule> {
                self.illegal_in(Some(regs))
            }
        }

        impl core::fmt::Debug for #enum_name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                match self { #( Self::#variants(v) => core::fmt::Debug::fmt(v, f), )* }
            }
        }

        impl core::fmt::Display for #enum_name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                match self { #( Self::#variants(v) => core::fmt::Display::fmt(v, f), )* }
            }
        }

        #[cfg(feature = "fuzzing")]
        impl<'a> arbitrary::Arbitrary<'a> for #enum_name {
            fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
                Ok(match u.int_in_range(0..=#arb_last)? {
                    #(#arb_arms)*
                    _ => return Err(arbitrary::Error::IncorrectFormat),
                })
            }
        }
    }
}
