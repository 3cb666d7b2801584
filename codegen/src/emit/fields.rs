//! Accessors, field tables and enums shared by every value type
//! (registers over one word, commands/events/structures over several).

use proc_macro2::{Ident, Literal, TokenStream};
use quote::{format_ident, quote};

use crate::expr::{Cond, Op, Operand};
use crate::model::{Field, Spec, ValuesOf};
use crate::names;

pub fn lit_u64(v: u64) -> Literal {
    Literal::u64_suffixed(v)
}

pub fn hex(v: u64) -> TokenStream {
    let s = format!("0x{v:x}");
    let s = if v > 0xffff { group_hex(&s) } else { s };
    let lit: Literal = s.parse().expect("a hex literal always parses");
    quote!(#lit)
}

/// `0x1234abcd` -> `0x1234_abcd`, as rustfmt would like it.
fn group_hex(s: &str) -> String {
    let digits = &s[2..];
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(4) {
            out.push('_');
        }
        out.push(c);
    }
    format!("0x{out}")
}

/// The Rust type a getter returns.
pub fn value_type(owner: &str, f: &Field) -> TokenStream {
    if !f.values.is_empty() {
        let t = format_ident!("{}", names::enum_type(owner, &f.name));
        return quote!(#t);
    }
    if f.width() == 1 {
        return quote!(bool);
    }
    raw_type(f)
}

/// The unsigned type that holds the raw field (or the in-place address).
pub fn raw_type(f: &Field) -> TokenStream {
    let bits = if f.address { f.hi + 1 } else { f.width() };
    match bits {
        0..=8 => quote!(u8),
        9..=16 => quote!(u16),
        17..=32 => quote!(u32),
        _ => quote!(u64),
    }
}

/// One line of documentation per field: description and place.
fn field_doc(f: &Field, multiword: bool) -> String {
    let place = if multiword {
        format!("word {} bits [{}]", f.word, f.bits_text())
    } else {
        format!("bits [{}]", f.bits_text())
    };
    let addr = if f.address {
        " (address, in place)"
    } else {
        ""
    };
    format!("`{}`, {place}{addr}: {}", f.name, f.description)
}

/// Getter, setter and builder for one field. `word` is the expression of the
/// 64-bit word holding it (`self.0[2]` or `(self.0 as u64)`), `store` writes it back.
pub fn accessors(owner: &str, f: &Field, multiword: bool, container: &TokenStream) -> TokenStream {
    let get = format_ident!("{}", names::method(&f.name));
    let set = format_ident!("set_{}", names::method(&f.name));
    let with = format_ident!("with_{}", names::method(&f.name));
    let doc = field_doc(f, multiword);
    let lo = Literal::u32_unsuffixed(f.lo);
    let mask = hex(f.mask());
    let raw = raw_type(f);
    let ty = value_type(owner, f);
    let w = Literal::usize_unsuffixed(f.word);
    let (read_word, write_word) = if multiword {
        (quote!(self.0[#w]), quote!(self.0[#w]))
    } else {
        (quote!((self.0 as u64)), quote!(self.0))
    };
    // Raw value as u64 (shifted down unless it is an address kept in place).
    let extract = if f.address {
        quote!((#read_word & #mask))
    } else {
        quote!(((#read_word & #mask) >> #lo))
    };
    let insert = |v: TokenStream| {
        let placed = if f.address {
            quote!(((#v) & #mask))
        } else {
            quote!((((#v) << #lo) & #mask))
        };
        if multiword {
            quote!(#write_word = (#write_word & !#mask) | #placed;)
        } else {
            quote!(#write_word = ((#write_word as u64 & !#mask) | #placed) as #container;)
        }
    };
    let (getter_body, set_body) = if !f.values.is_empty() {
        let set_body = insert(quote!(v.0 as u64));
        (quote!(#ty(#extract as #raw)), set_body)
    } else if f.width() == 1 && !f.address {
        (quote!(#extract != 0), insert(quote!(v as u64)))
    } else {
        (quote!(#extract as #raw), insert(quote!(v as u64)))
    };
    let set_doc = format!(
        "Sets `{}`; bits that do not fit the field are dropped.",
        f.name
    );
    quote! {
        #[doc = #doc]
        #[inline]
        pub const fn #get(&self) -> #ty { #getter_body }
        #[doc = #set_doc]
        #[inline]
        pub const fn #set(&mut self, v: #ty) { #set_body }
        #[doc = #set_doc]
        #[inline]
        #[must_use]
        pub const fn #with(mut self, v: #ty) -> Self { self.#set(v); self }
    }
}

/// `crate::FieldInfo` entries for a table.
pub fn field_infos(fields: &[Field]) -> TokenStream {
    let infos = fields.iter().map(|f| {
        let name = &f.name;
        let desc = &f.description;
        let word = f.word as u8;
        let lo = f.lo as u8;
        let width = f.width() as u8;
        let address = f.address;
        let values = f.values.iter().map(|(n, v)| {
            let v = lit_u64(*v);
            quote!((#n, #v))
        });
        quote! {
            crate::FieldInfo {
                name: #name, description: #desc, word: #word, lo: #lo, width: #width,
                address: #address, values: &[#(#values),*],
            }
        }
    });
    quote!(&[#(#infos),*])
}

/// `pub mod <owner>` with one `FieldInfo` constant per field (in spec
/// order, the same as `FIELDS`): code that names fields, for a mask of
/// several or to read one generically, names them in Rust, not in strings.
pub fn field_consts(owner: &str, path: &TokenStream, fields: &[Field]) -> TokenStream {
    use heck::{ToShoutySnakeCase, ToSnakeCase};
    let module = format_ident!("{}", names::type_name(owner).to_snake_case());
    let mut seen: Vec<String> = Vec::new();
    let consts = fields.iter().enumerate().map(|(i, f)| {
        let name = f.name.to_shouty_snake_case();
        if seen.contains(&name) {
            let msg = format!("{owner}: two fields are both `{name}` in Rust");
            return quote!(compile_error!(#msg););
        }
        seen.push(name.clone());
        let c = format_ident!("{}", name);
        let i = Literal::usize_unsuffixed(i);
        let doc = format!("`{}`: {}", f.name, f.description);
        quote!(#[doc = #doc] pub const #c: crate::FieldInfo = #path::FIELDS[#i];)
    });
    let doc = format!("The fields of `{owner}`, one constant each.");
    quote! {
        #[doc = #doc]
        pub mod #module {
            #(#consts)*
        }
    }
}

/// Newtype enums for the fields that have named values of their own, and
/// for the others the name they always had, as another name of the type that
/// defines their values (a named enum, the register whose layout is shared).
pub fn enums(owner: &str, fields: &[Field]) -> TokenStream {
    let items = fields.iter().filter(|f| !f.values.is_empty()).map(|f| {
        let t = format_ident!("{}", names::enum_type(owner, &f.name));
        match &f.values_of {
            Some(ValuesOf::Enum(e)) => {
                let e = format_ident!("{}", names::type_name(e));
                quote!(pub use crate::values::#e as #t;)
            }
            Some(ValuesOf::Field(reg, field)) => {
                let e = format_ident!("{}", names::enum_type(reg, field));
                quote!(pub use crate::regs::#e as #t;)
            }
            None => {
                let doc = format!("Values of `{owner}.{}`: {}", f.name, f.description);
                value_enum(&t, &raw_type(f), &doc, &f.values)
            }
        }
    });
    quote!(#(#items)*)
}

/// The `values` module: one type per named value list (`enum/NAME`).
pub fn named_enums(spec: &Spec) -> TokenStream {
    let items = spec.enums.iter().map(|e| {
        let t = format_ident!("{}", names::type_name(&e.name));
        let users: Vec<String> = spec
            .enum_users(&e.name)
            .map(|(owner, f)| format!("`{owner}.{}`", f.name))
            .collect();
        let raw = match spec.enum_users(&e.name).next() {
            Some((_, f)) => raw_type(f),
            None => quote!(u64),
        };
        let doc = format!(
            "{} ({}). Values of {}.",
            e.description,
            e.spec,
            if users.is_empty() {
                "no field".to_string()
            } else {
                users.join(", ")
            }
        );
        value_enum(&t, &raw, &doc, &e.values)
    });
    quote!(#(#items)*)
}

/// A newtype over the raw field with a constant per named value.
fn value_enum(t: &Ident, raw: &TokenStream, doc: &str, values: &[(String, u64)]) -> TokenStream {
    let consts = values.iter().map(|(n, v)| {
        let c = format_ident!("{}", n);
        let v_doc = format!("`{}` = {v:#x}", n);
        let v = Literal::u64_unsuffixed(*v);
        quote!(#[doc = #v_doc] pub const #c: Self = Self(#v);)
    });
    let arms = values.iter().map(|(n, v)| {
        let v = Literal::u64_unsuffixed(*v);
        quote!(#v => Some(#n),)
    });
    quote! {
        #[doc = #doc]
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        #[repr(transparent)]
        pub struct #t(pub #raw);
        impl #t {
            #(#consts)*
            /// The architecture's name for this value, if it has one.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 { #(#arms)* _ => None }
            }
        }
        impl core::fmt::Debug for #t {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "{:#x}", self.0),
                }
            }
        }
        impl core::fmt::Display for #t {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                core::fmt::Debug::fmt(self, f)
            }
        }
    }
}

/// A condition as a Rust boolean expression. `local` reads a field of `self`
/// from `words` (an expression of type `[u64; N]` or `u64`); register operands
/// read `regs.value(Register::X)`.
pub fn cond_expr(
    spec: &Spec,
    cond: &Cond,
    fields: &[Field],
    words: &TokenStream,
    multiword: bool,
    regs: &TokenStream,
) -> TokenStream {
    if cond.terms.is_empty() {
        return quote!(true);
    }
    // Fields of the value itself first: they are cheaper than register reads
    // and usually decide the conjunction (it has no side effects to reorder).
    let mut ordered: Vec<&crate::expr::Term> = cond.terms.iter().collect();
    ordered.sort_by_key(|t| matches!(t.operand, Operand::Register(..)));
    let terms = ordered.into_iter().map(|t| {
        let (source, f) = match &t.operand {
            Operand::Local(n) => {
                let f = fields
                    .iter()
                    .find(|f| &f.name == n)
                    .expect("validated: local operand exists");
                let w = Literal::usize_unsuffixed(f.word);
                let src = if multiword {
                    quote!(#words[#w])
                } else {
                    quote!(#words)
                };
                (src, f)
            }
            Operand::Register(r, n) => {
                let reg = spec.register(r).expect("validated: register exists");
                let f = reg
                    .fields
                    .iter()
                    .find(|f| &f.name == n)
                    .expect("validated: field exists");
                let id = format_ident!("{}", r);
                (quote!(#regs.value(crate::Register::#id)), f)
            }
        };
        let lo = Literal::u32_unsuffixed(f.lo);
        let max = hex(f.max());
        let v = hex(t.value);
        match t.op {
            Op::Eq => quote!((((#source) >> #lo) & #max) == #v),
            Op::Ne => quote!((((#source) >> #lo) & #max) != #v),
            Op::Gt => quote!((((#source) >> #lo) & #max) > #v),
        }
    });
    quote!(#(#terms)&&*)
}
