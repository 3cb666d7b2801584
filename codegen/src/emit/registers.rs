//! Registers: a value type per register, the `Register` enum with its
//! `REGISTERS` table, the MMIO dispatch and the tock-registers layout.

use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};

use super::fields::{accessors, cond_expr, enums, field_consts, field_infos, hex, lit_u64};
use crate::expr::Cond;
use crate::model::{Access, Emulation, Field, Register, Role, Spec};
use crate::names;

fn reg_ident(r: &Register) -> proc_macro2::Ident {
    format_ident!("{}", r.name)
}

fn container(r: &Register) -> TokenStream {
    if r.width == 64 {
        quote!(u64)
    } else {
        quote!(u32)
    }
}

/// `Cr0(pub u32)` with RESET, WRITE_MASK and field accessors.
pub fn value_type(spec: &Spec, r: &Register) -> TokenStream {
    let ty = format_ident!("{}", names::type_name(&r.name));
    let c = container(r);
    let name = &r.name;
    let doc = format!(
        "SMMU_{name} ({}, page {} offset {:#x}, {}-bit): {}",
        r.spec, r.page, r.offset, r.width, r.description
    );
    let reset_doc = if r.reset.is_some() {
        "Value after reset."
    } else {
        "Value after reset: UNKNOWN in the architecture, zero here."
    };
    let reset = hex(r.reset.unwrap_or(0));
    let mask = hex(r.field_mask());
    let infos = field_infos(&r.fields);
    let access = r.fields.iter().map(|f| accessors(&r.name, f, false, &c));
    let enum_items = enums(&r.name, &r.fields);
    let id = reg_ident(r);
    let masks = field_masks(spec, r);
    // A register with another's layout (an ACK register) converts to and
    // from it: the ACK shows the control register's value.
    let shared = r.layout.as_ref().map(|other| {
        let o = format_ident!("{}", names::type_name(other));
        quote! {
            impl From<#o> for #ty {
                fn from(v: #o) -> Self {
                    Self(v.0)
                }
            }
            impl From<#ty> for #o {
                fn from(v: #ty) -> Self {
                    Self(v.0)
                }
            }
        }
    });
    let field_consts = field_consts(&r.name, &quote!(crate::regs::#ty), &r.fields);
    quote! {
        #shared
        #field_consts

        #[doc = #doc]
        #[doc(alias = #name)]
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
        #[repr(transparent)]
        pub struct #ty(pub #c);

        #enum_items

        impl #ty {
            /// The register this value belongs to.
            pub const REGISTER: crate::Register = crate::Register::#id;
            #[doc = #reset_doc]
            pub const RESET: Self = Self(#reset);
            /// The union of the fields: every other bit is RES0.
            pub const WRITE_MASK: #c = #mask;
            /// Every field, in spec order.
            pub const FIELDS: &'static [crate::FieldInfo] = #infos;

            #masks
            #(#access)*
        }

        impl crate::RegisterType for #ty {
            const REGISTER: crate::Register = crate::Register::#id;
            #[inline]
            fn from_raw(raw: u64) -> Self {
                Self(raw as #c)
            }
            #[inline]
            fn raw(self) -> u64 {
                self.0 as u64
            }
        }

        impl core::fmt::Debug for #ty {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                crate::support::debug_fields(f, #name, Self::FIELDS, &[self.0 as u64])
            }
        }

        impl core::fmt::Display for #ty {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                crate::support::display_fields(f, #name, Self::FIELDS, &[self.0 as u64])
            }
        }
    }
}

/// The fields that share each condition, in spec order: one test per condition.
fn groups<'a>(
    r: &'a Register,
    cond_of: impl Fn(&'a Field) -> Option<&'a (Cond, String)>,
) -> Vec<(&'a (Cond, String), u64, Vec<&'a str>)> {
    let mut out: Vec<(&(Cond, String), u64, Vec<&str>)> = Vec::new();
    for f in &r.fields {
        let Some(c) = cond_of(f) else { continue };
        match out.iter_mut().find(|(d, _, _)| d.0 == c.0) {
            Some((_, mask, names)) => {
                *mask |= f.mask();
                names.push(&f.name);
            }
            None => out.push((c, f.mask(), vec![&f.name])),
        }
    }
    out
}

/// `mask &= !BITS` for every group whose condition does not hold, and a doc
/// line per group naming its fields.
fn clear_unless(
    spec: &Spec,
    groups: &[(&(Cond, String), u64, Vec<&str>)],
    regs: &TokenStream,
) -> (Vec<String>, Vec<TokenStream>) {
    let docs = groups
        .iter()
        .map(|((_, text), mask, names)| {
            let names: Vec<_> = names.iter().map(|n| format!("`{n}`")).collect();
            format!(" - {} ({mask:#x}): if `{text}`", names.join(", "))
        })
        .collect();
    let tests = groups
        .iter()
        .map(|((c, _), mask, _)| {
            let e = cond_expr(spec, c, &[], &quote!(()), false, regs);
            let m = hex(*mask);
            quote!(if !(#e) { mask &= !#m; })
        })
        .collect();
    (docs, tests)
}

/// `present_mask` and `writable_mask` for a register whose fields have conditions.
fn field_masks(spec: &Spec, r: &Register) -> TokenStream {
    let c = container(r);
    let mut out = TokenStream::new();
    let present = groups(r, |f| f.present_if.as_ref());
    if !present.is_empty() {
        let (docs, tests) = clear_unless(spec, &present, &quote!(ident));
        out.extend(quote! {
            /// The fields present on an SMMU with these identification registers.
            /// A field that is not is RES0: it reads as zero and writes to it have
            /// no effect. Fields with a condition:
            #(#[doc = #docs])*
            #[inline]
            pub fn present_mask(ident: &impl crate::RegisterValues) -> #c {
                let mut mask = Self::WRITE_MASK;
                #(#tests)*
                mask
            }
        });
    }
    let writable = groups(r, |f| f.writable_if.as_ref());
    if !writable.is_empty() {
        let (docs, tests) = clear_unless(spec, &writable, &quote!(regs));
        let start = if present.is_empty() {
            quote!(Self::WRITE_MASK)
        } else {
            quote!(Self::present_mask(regs))
        };
        out.extend(quote! {
            /// The fields a write may change in this state: the present ones,
            /// less those read-only now. Fields with a condition:
            #(#[doc = #docs])*
            #[inline]
            pub fn writable_mask(regs: &impl crate::RegisterValues) -> #c {
                let mut mask = #start;
                #(#tests)*
                mask
            }
        });
    }
    out
}

fn emulation_tokens(e: Emulation) -> TokenStream {
    let v = format_ident!(
        "{}",
        match e {
            Emulation::Ident => "Ident",
            Emulation::Plain => "Plain",
            Emulation::Control => "Control",
            Emulation::Ack => "Ack",
            Emulation::Status => "Status",
            Emulation::Gerror => "Gerror",
            Emulation::Gerrorn => "Gerrorn",
            Emulation::QueueBase => "QueueBase",
            Emulation::QueuePointer => "QueuePointer",
        }
    );
    quote!(crate::Emulation::#v)
}

fn opt_str(s: Option<&str>) -> TokenStream {
    match s {
        Some(s) => quote!(Some(#s)),
        None => quote!(None),
    }
}

/// The `Register` enum and the `REGISTERS` table, sorted by page and offset.
pub fn register_table(spec: &Spec) -> TokenStream {
    let regs = &spec.registers;
    let count = regs.len();
    let ids: Vec<_> = regs.iter().map(reg_ident).collect();
    let idx: Vec<_> = (0..count).map(Literal::usize_unsuffixed).collect();
    let docs = regs
        .iter()
        .map(|r| format!("SMMU_{} ({}): {}", r.name, r.spec, r.description));
    let infos = regs.iter().map(|r| {
        let name = &r.name;
        let page = r.page as u8;
        let offset = hex(r.offset as u64);
        let width = r.width as u8;
        let access = match r.access {
            Access::ReadOnly => quote!(crate::RegAccess::ReadOnly),
            Access::ReadWrite => quote!(crate::RegAccess::ReadWrite),
        };
        let reset = lit_u64(r.reset.unwrap_or(0));
        let reset_known = r.reset.is_some();
        let mask = hex(r.field_mask());
        let emulation = emulation_tokens(r.emulation);
        let ack = match &r.ack {
            Some(a) => {
                let a = format_ident!("{}", a);
                quote!(Some(crate::Register::#a))
            }
            None => quote!(None),
        };
        let on_write = opt_str(r.on_write.as_deref());
        let queue = opt_str(r.queue.as_deref());
        let role = match r.role {
            Some(Role::Prod) => quote!(Some(crate::QueueRole::Prod)),
            Some(Role::Cons) => quote!(Some(crate::QueueRole::Cons)),
            None => quote!(None),
        };
        let writable_if = opt_str(r.writable_if.as_ref().map(|(_, t)| t.as_str()));
        let present_if = opt_str(r.present_if.as_ref().map(|(_, t)| t.as_str()));
        let fields = field_infos(&r.fields);
        let description = &r.description;
        let sref = &r.spec;
        quote! {
            crate::RegInfo {
                name: #name, spec: #sref, description: #description, page: #page, offset: #offset,
                width: #width, access: #access, reset: #reset, reset_known: #reset_known,
                write_mask: #mask, emulation: #emulation, ack: #ack, on_write: #on_write,
                queue: #queue, role: #role, writable_if: #writable_if, present_if: #present_if,
                fields: #fields,
            }
        }
    });
    quote! {
        /// Every register of the Non-secure pages 0 and 1, in offset order.
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum Register {
            #( #[doc = #docs] #ids = #idx, )*
        }

        impl Register {
            /// How many registers there are.
            pub const COUNT: usize = #count;
            /// Every register, in offset order.
            pub const ALL: [Register; #count] = [#(Register::#ids),*];

            /// Index into [`REGISTERS`] (and into a register bank).
            pub const fn index(self) -> usize { self as usize }

            /// The description of this register.
            pub const fn info(self) -> &'static crate::RegInfo { &REGISTERS[self as usize] }
        }

        /// Descriptions of every register, indexed by [`Register::index`].
        pub static REGISTERS: [crate::RegInfo; #count] = [#(#infos),*];
    }
}

fn type_path(r: &Register) -> TokenStream {
    let ty = format_ident!("{}", names::type_name(&r.name));
    quote!(crate::regs::#ty)
}

/// The store of a register with conditional fields: the fields a write may
/// change take the written value, the others keep theirs. Binds `present`
/// (without `writable_if` fields) or `writable`.
fn gated_store(r: &Register) -> TokenStream {
    let ty = type_path(r);
    let all = hex(r.field_mask());
    if !has_writable_if(r) {
        return quote! {
            let present = #ty::present_mask(&RegisterView(&*h)) as u64;
            let new = ((old & !present) | (half.merge(old, value) & present)) & #all;
        };
    }
    quote! {
        let writable = #ty::writable_mask(&RegisterView(&*h)) as u64;
        if writable == 0 {
            return crate::WriteEffect::Ignored;
        }
        let new = ((old & !writable) | (half.merge(old, value) & writable)) & #all;
    }
}

fn has_writable_if(r: &Register) -> bool {
    r.fields.iter().any(|f| f.writable_if.is_some())
}

/// The bits of a control register its ACK register mirrors. The validator
/// makes ACK fields the control fields with the same `present_if`, so the
/// control register's `present` (bound by `gated_store`) serves for both.
fn ack_mask(r: &Register, ack: &Register) -> TokenStream {
    let a_mask = hex(ack.field_mask());
    if !ack.has_field_presence() {
        return a_mask;
    }
    if r.has_field_presence() && !has_writable_if(r) {
        return quote!(#a_mask & present);
    }
    let a_ty = type_path(ack);
    quote!(#a_ty::present_mask(&RegisterView(&*h)) as u64)
}

/// `decode_access`: (page, offset, size) -> the register and half, or RAZ/WI.
pub fn dispatch(spec: &Spec) -> TokenStream {
    let mut arms = Vec::new();
    for r in &spec.registers {
        let id = reg_ident(r);
        let page = Literal::u32_unsuffixed(r.page);
        let off = hex(r.offset as u64);
        if r.width == 64 {
            let hi = hex(r.offset as u64 + 4);
            arms.push(quote!((#page, #off, 8) => crate::Access::Register { reg: crate::Register::#id, half: crate::Half::Full },));
            arms.push(quote!((#page, #off, 4) => crate::Access::Register { reg: crate::Register::#id, half: crate::Half::Low },));
            arms.push(quote!((#page, #hi, 4) => crate::Access::Register { reg: crate::Register::#id, half: crate::Half::High },));
        } else {
            arms.push(quote!((#page, #off, 4) => crate::Access::Register { reg: crate::Register::#id, half: crate::Half::Full },));
        }
    }
    quote! {
        /// Which register (and which half of it) a trapped access reaches.
        ///
        /// `page` is 0 or 1, `offset` is within the 64 KiB page and `size` is the
        /// access size in bytes. A 32-bit register takes aligned 4-byte accesses;
        /// a 64-bit register takes an aligned 8-byte access or a 4-byte access to
        /// either half. Every other access is [`Access::RazWi`]: reserved offsets
        /// are RES0, and the architecture makes other sizes CONSTRAINED
        /// UNPREDICTABLE with RAZ/WI a permitted behaviour.
        pub const fn decode_access(page: u32, offset: u32, size: u32) -> crate::Access {
            match (page, offset, size) {
                #(#arms)*
                _ => crate::Access::RazWi,
            }
        }
    }
}

/// The `MmioHandlers` trait and `mmio_read`/`mmio_write`.
pub fn mmio(spec: &Spec) -> TokenStream {
    let handlers: Vec<_> = spec
        .registers
        .iter()
        .filter_map(|r| r.on_write.as_ref().map(|h| (r, h)))
        .collect();
    let trait_methods = handlers.iter().map(|(r, h)| {
        let m = format_ident!("{}", h);
        let ty = type_path(r);
        let (ret, doc) = match &r.ack {
            Some(a) => (
                quote!(crate::Written<#ty>),
                format!(
                    "A guest write to SMMU_{}: `old` is the register, `new` what the write makes of it (only what the guest may change). Returns what the register keeps and what SMMU_{a} shows; both are stored, then [`Self::written`] is called.",
                    r.name
                ),
            ),
            None => (
                quote!(#ty),
                format!(
                    "A guest write to SMMU_{}: `old` is the register, `new` what the write makes of it (only what the guest may change). Returns what the register keeps; it is stored, then [`Self::written`] is called.",
                    r.name
                ),
            ),
        };
        quote!(#[doc = #doc] fn #m(&mut self, old: #ty, new: #ty) -> #ret;)
    });
    let regs_tok = quote!(RegisterView(h));
    let present_arms = spec.registers.iter().filter_map(|r| {
        r.present_if.as_ref().map(|(c, _)| {
            let id = reg_ident(r);
            let e = cond_expr(spec, c, &[], &quote!(()), false, &regs_tok);
            quote!(crate::Register::#id => #e,)
        })
    });
    let writable_arms = spec.registers.iter().filter_map(|r| {
        r.writable_if.as_ref().map(|(c, _)| {
            let id = reg_ident(r);
            let e = cond_expr(spec, c, &[], &quote!(()), false, &regs_tok);
            quote!(crate::Register::#id => #e,)
        })
    });
    // An absent register first (a guard arm), then the fields of a present one.
    let present_mask_arms = spec.registers.iter().flat_map(|r| {
        let id = reg_ident(r);
        let absent = r.present_if.as_ref().map(|(c, _)| {
            let e = cond_expr(spec, c, &[], &quote!(()), false, &quote!(ident));
            quote!(crate::Register::#id if !(#e) => 0,)
        });
        let fields = r.has_field_presence().then(|| {
            let ty = type_path(r);
            quote!(crate::Register::#id => #ty::present_mask(ident) as u64,)
        });
        absent.into_iter().chain(fields)
    });
    // One match for a read: an absent register reads as zero, absent fields too.
    let read_arms = spec.registers.iter().flat_map(|r| {
        let id = reg_ident(r);
        let absent = r.present_if.as_ref().map(|(c, _)| {
            let e = cond_expr(spec, c, &[], &quote!(()), false, &regs_tok);
            quote!(crate::Register::#id if !(#e) => 0,)
        });
        let fields = r.has_field_presence().then(|| {
            let ty = type_path(r);
            quote!(crate::Register::#id => value & #ty::present_mask(&RegisterView(h)) as u64,)
        });
        absent.into_iter().chain(fields)
    });
    let write_arms = spec
        .registers
        .iter()
        .filter(|r| r.emulation.takes_writes())
        .map(|r| {
            let id = reg_ident(r);
            let mask = hex(r.field_mask());
            let ty = type_path(r);
            let c = container(r);
            // The handler decides what is kept (and acknowledged) before
            // anything is stored; `written` follows the stores.
            let handler = r.on_write.as_ref().map(|h| {
                let m = format_ident!("{}", h);
                if r.ack.is_some() {
                    quote! {
                        let w = h.#m(#ty(old as #c), #ty(new as #c));
                        let (new, ack) = (w.value.0 as u64 & #mask, w.ack.0 as u64);
                    }
                } else {
                    quote! {
                        let new = h.#m(#ty(old as #c), #ty(new as #c)).0 as u64 & #mask;
                    }
                }
            });
            let mirror = (r.on_write.is_none() && r.ack.is_some()).then(|| quote!(let ack = new;));
            let written = r.on_write.as_ref().map(|_| quote!(h.written(reg);));
            let ack = r.ack.as_ref().map(|a| {
                let a_reg = spec.register(a).expect("validated: ack exists");
                let a_id = format_ident!("{}", a);
                let a_mask = ack_mask(r, a_reg);
                quote! {
                    h.store(crate::Register::#a_id, ack & #a_mask);
                }
            });
            let store = if r.has_gated_fields() {
                gated_store(r)
            } else {
                quote!(let new = half.merge(old, value) & #mask;)
            };
            quote! {
                crate::Register::#id => {
                    let old = h.load(reg);
                    #store
                    #handler
                    #mirror
                    h.store(reg, new);
                    #ack
                    #written
                    crate::WriteEffect::Stored
                }
            }
        });
    quote! {
        /// What the generated dispatch needs from a register file: storage, the
        /// identification values presented, and a handler for each register
        /// whose write has side effects (`on_write` in the spec).
        pub trait MmioHandlers {
            /// The value an `ident` register presents (IDRn, IIDR, AIDR, the ID block).
            fn ident(&self, reg: crate::Register) -> u64;
            /// The stored value of any other register.
            fn load(&self, reg: crate::Register) -> u64;
            /// Replaces the stored value of a register.
            fn store(&mut self, reg: crate::Register, value: u64);
            #(#trait_methods)*
            /// After a write to a register with a handler was stored (and
            /// its ACK register updated): where the write's effects run.
            fn written(&mut self, reg: crate::Register) {
                let _ = reg;
            }
        }

        /// Register values as conditions see them: `ident` registers through
        /// `MmioHandlers::ident`, the others through `load`.
        struct RegisterView<'a, H: ?Sized>(&'a H);

        impl<H: MmioHandlers + ?Sized> crate::RegisterValues for RegisterView<'_, H> {
            fn value(&self, reg: crate::Register) -> u64 {
                match reg.info().emulation {
                    crate::Emulation::Ident => self.0.ident(reg),
                    _ => self.0.load(reg),
                }
            }
        }

        /// Whether the register exists on this SMMU (its `present_if` holds).
        pub fn is_present<H: MmioHandlers + ?Sized>(h: &H, reg: crate::Register) -> bool {
            use crate::RegisterValues as _;
            match reg { #(#present_arms)* _ => true }
        }

        impl crate::Register {
            /// The fields of this register present on an SMMU with these
            /// identification registers (the `present_if` of the register and of
            /// its fields); zero for an absent register. Every other bit reads as
            /// zero and ignores writes.
            pub fn present_mask(self, ident: &impl crate::RegisterValues) -> u64 {
                match self {
                    #(#present_mask_arms)*
                    _ => self.info().write_mask,
                }
            }
        }

        /// A value as the guest reads it: an absent register, and fields absent
        /// on this SMMU, read as zero.
        #[inline]
        fn guest_view<H: MmioHandlers + ?Sized>(h: &H, reg: crate::Register, value: u64) -> u64 {
            use crate::RegisterValues as _;
            match reg {
                #(#read_arms)*
                _ => value,
            }
        }

        /// Whether a write to the register takes effect now (its `writable_if` holds).
        pub fn is_writable<H: MmioHandlers + ?Sized>(h: &H, reg: crate::Register) -> bool {
            use crate::RegisterValues as _;
            match reg { #(#writable_arms)* _ => true }
        }

        /// A trapped read: the value to return to the guest (zero for RAZ).
        pub fn mmio_read<H: MmioHandlers + ?Sized>(h: &H, page: u32, offset: u32, size: u32) -> u64 {
            use crate::RegisterValues as _;
            match decode_access(page, offset, size) {
                crate::Access::RazWi => 0,
                crate::Access::Register { reg, half } => {
                    half.extract(guest_view(h, reg, RegisterView(h).value(reg)))
                }
            }
        }

        /// A trapped write: what the architecture lets the guest change goes
        /// to the register's handler (if it has one), which decides what is
        /// stored and acknowledged; then `written`.
        pub fn mmio_write<H: MmioHandlers + ?Sized>(h: &mut H, page: u32, offset: u32, size: u32, value: u64) -> crate::WriteEffect {
            let (reg, half) = match decode_access(page, offset, size) {
                crate::Access::RazWi => return crate::WriteEffect::Ignored,
                crate::Access::Register { reg, half } => (reg, half),
            };
            if !is_present(h, reg) || !is_writable(h, reg) {
                return crate::WriteEffect::Ignored;
            }
            match reg {
                #(#write_arms)*
                _ => crate::WriteEffect::Ignored,
            }
        }
    }
}

/// The registers of each queue, grouped by their `queue:` and `role:` keys,
/// so that a queue's users name the queue rather than three registers.
pub fn queues(spec: &Spec) -> TokenStream {
    let mut names: Vec<&str> = spec
        .registers
        .iter()
        .filter_map(|r| r.queue.as_deref())
        .collect();
    names.sort();
    names.dedup();
    let find = |q: &str, e: Emulation, role: Option<Role>| {
        let r = spec
            .registers
            .iter()
            .find(|r| r.queue.as_deref() == Some(q) && r.emulation == e && r.role == role)
            .expect("validated: one register per queue role");
        reg_ident(r)
    };
    let consts = names.iter().map(|q| {
        let id = format_ident!("{}", q);
        let base = find(q, Emulation::QueueBase, None);
        let prod = find(q, Emulation::QueuePointer, Some(Role::Prod));
        let cons = find(q, Emulation::QueuePointer, Some(Role::Cons));
        let doc = format!("The {q} registers: {base}, {prod} and {cons}.");
        quote! {
            #[doc = #doc]
            pub const #id: QueueRegisters = QueueRegisters {
                name: #q, base: crate::Register::#base,
                prod: crate::Register::#prod, cons: crate::Register::#cons,
            };
        }
    });
    let ids = names.iter().map(|q| format_ident!("{}", q));
    let count = names.len();
    quote! {
        /// The base, producer and consumer registers of one queue.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct QueueRegisters {
            /// The queue's name in the spec (`CMDQ`).
            pub name: &'static str,
            /// `*_BASE`: address and log2 size.
            pub base: crate::Register,
            /// `*_PROD`: the producer index and wrap flag.
            pub prod: crate::Register,
            /// `*_CONS`: the consumer index and wrap flag.
            pub cons: crate::Register,
        }

        impl QueueRegisters {
            #(#consts)*
        }

        /// Every queue of the spec, by name.
        pub const QUEUES: [QueueRegisters; #count] = [#(QueueRegisters::#ids),*];
    }
}

/// tock-registers bitfields for every register and the two page layouts.
pub fn tock(spec: &Spec) -> TokenStream {
    let bitfields = |width: u32| {
        let regs = spec
            .registers
            .iter()
            .filter(|r| r.width == width && !r.fields.is_empty())
            .map(|r| {
                let id = reg_ident(r);
                let fields = r.fields.iter().map(|f| {
                    let fname = format_ident!("{}", f.name);
                    let lo = Literal::u32_unsuffixed(f.lo);
                    let w = Literal::u32_unsuffixed(f.width());
                    let doc = &f.description;
                    let values = f.values.iter().map(|(n, v)| {
                        let vn = format_ident!("{}", names::tock_value(n));
                        let v = Literal::u64_unsuffixed(*v);
                        quote!(#vn = #v)
                    });
                    quote!(#[doc = #doc] #fname OFFSET(#lo) NUMBITS(#w) [#(#values),*])
                });
                quote!(pub #id [#(#fields),*])
            });
        let ty = if width == 64 {
            quote!(u64)
        } else {
            quote!(u32)
        };
        quote!(tock_registers::register_bitfields![#ty, #(#regs),*];)
    };
    let b32 = bitfields(32);
    let b64 = bitfields(64);
    let page = |p: u32, name: &str| {
        let ident = format_ident!("{}", name);
        let mut items = Vec::new();
        let mut at = 0u32;
        let mut pad = 0u32;
        for r in spec.registers.iter().filter(|r| r.page == p) {
            if r.offset > at {
                let off = hex(at as u64);
                let pname = format_ident!("_reserved{}", pad);
                pad += 1;
                items.push(quote!((#off => #pname),));
            }
            let off = hex(r.offset as u64);
            let field = format_ident!("{}", names::method(&r.name));
            let id = reg_ident(r);
            let ty = container(r);
            let acc = match r.access {
                Access::ReadOnly => quote!(tock_registers::registers::ReadOnly),
                Access::ReadWrite => quote!(tock_registers::registers::ReadWrite),
            };
            if r.fields.is_empty() {
                items.push(quote!((#off => pub #field: #acc<#ty>),));
            } else {
                items.push(quote!((#off => pub #field: #acc<#ty, #id::Register>),));
            }
            at = r.offset + r.width / 8;
        }
        if at < 0x1_0000 {
            let off = hex(at as u64);
            let pname = format_ident!("_reserved{}", pad);
            items.push(quote!((#off => #pname),));
        }
        let end = hex(0x1_0000);
        let doc = format!("Register page {p} of the Non-secure programming interface (64 KiB).");
        quote!(#[doc = #doc] pub #ident { #(#items)* (#end => @END), })
    };
    let p0 = page(0, "Page0");
    let p1 = page(1, "Page1");
    quote! {
        #b32
        #b64
        tock_registers::register_structs! {
            #p0,
            #p1
        }
    }
}
