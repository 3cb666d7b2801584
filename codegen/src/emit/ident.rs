//! `IdRegisters`: every register whose emulation is `ident`, as one typed
//! value. Drivers probe it, the model and the vSMMU present it, and the
//! runtime combines several SMMUs' into one.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::model::{Emulation, Spec};
use crate::names;

pub fn id_registers(spec: &Spec) -> TokenStream {
    let ids: Vec<_> = spec
        .registers
        .iter()
        .filter(|r| r.emulation == Emulation::Ident)
        .collect();
    let field = |name: &str| format_ident!("{}", name.to_ascii_lowercase());
    let fields: Vec<_> = ids.iter().map(|r| field(&r.name)).collect();
    let types: Vec<_> = ids
        .iter()
        .map(|r| format_ident!("{}", names::type_name(&r.name)))
        .collect();
    let regs: Vec<_> = ids.iter().map(|r| format_ident!("{}", r.name)).collect();
    let docs = ids.iter().map(|r| format!("SMMU_{} ({})", r.name, r.spec));
    quote! {
        /// The identification registers of one SMMU: every register the
        /// spec marks `emulation: ident`, typed.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
        pub struct IdRegisters {
            #( #[doc = #docs] pub #fields: crate::regs::#types, )*
        }

        impl IdRegisters {
            /// The registers it holds, in spec order.
            pub const REGISTERS: &'static [crate::Register] = &[ #( crate::Register::#regs, )* ];

            /// Every register at its reset value.
            pub const RESET: Self = Self { #( #fields: crate::regs::#types::RESET, )* };

            /// Reads each register with `read` (for example from an SMMU's frame).
            pub fn read(mut read: impl FnMut(crate::Register) -> u64) -> Self {
                Self { #( #fields: crate::regs::#types(read(crate::Register::#regs) as _), )* }
            }

            /// The value of `reg`, or None when it is not an ID register.
            pub fn get(&self, reg: crate::Register) -> Option<u64> {
                match reg {
                    #( crate::Register::#regs => Some(self.#fields.0 as u64), )*
                    _ => None,
                }
            }

            /// Sets `reg` (truncated to its width); false when it is not an ID register.
            pub fn set(&mut self, reg: crate::Register, value: u64) -> bool {
                match reg {
                    #( crate::Register::#regs => self.#fields = crate::regs::#types(value as _), )*
                    _ => return false,
                }
                true
            }
        }

        impl crate::RegisterValues for IdRegisters {
            /// Other registers read as zero.
            fn value(&self, reg: crate::Register) -> u64 {
                self.get(reg).unwrap_or(0)
            }
        }
    }
}
