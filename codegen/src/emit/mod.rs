//! Model -> Rust tokens. Output is sorted (registers by page and offset,
//! commands by opcode, events by type, structures by name) so that a spec edit
//! shows up as a small diff of `generated/expanded.rs`.

mod fields;
mod ident;
mod records;
mod registers;

use proc_macro2::TokenStream;
use quote::quote;

use crate::model::{RecordKind, Spec};

/// Everything the `smmuv3` crate gets from the spec.
pub fn expand(spec: &Spec) -> TokenStream {
    let reg_values = spec
        .registers
        .iter()
        .map(|r| registers::value_type(spec, r));
    let commands = spec.commands.iter().map(|r| records::record(spec, r));
    let command_enum = records::family(&spec.commands, RecordKind::Command);
    let events = spec.events.iter().map(|r| records::record(spec, r));
    let event_enum = records::family(&spec.events, RecordKind::Event);
    let structs = spec.structs.iter().map(|r| records::record(spec, r));
    let table = registers::register_table(spec);
    let dispatch = registers::dispatch(spec);
    let mmio = registers::mmio(spec);
    let tock = registers::tock(spec);
    let id_registers = ident::id_registers(spec);
    let named_enums = fields::named_enums(spec);
    let queues = registers::queues(spec);
    quote! {
        /// Value lists the spec names once (`enum/NAME`) and several fields
        /// share; each field's own name for the type is another name of one of these.
        pub mod values {
            #named_enums
        }

        /// Register values: one type per register, with its fields.
        pub mod regs {
            #(#reg_values)*
        }

        /// Command queue entries: one type per command and the [`Command`](cmd::Command) enum.
        pub mod cmd {
            #(#commands)*
            #command_enum
        }

        /// Event queue records: one type per event and the [`Event`](evt::Event) enum.
        pub mod evt {
            #(#events)*
            #event_enum
        }

        /// In-memory structures: STE, CD, level-1 descriptors, PRI records and
        /// translation table descriptors.
        pub mod structs {
            #(#structs)*
        }

        /// The register map and the MMIO dispatch.
        pub mod mmio {
            #table
            #dispatch
            #mmio
            #queues
        }

        /// tock-registers definitions, for real MMIO (`hw/`).
        #[allow(non_upper_case_globals, non_snake_case, non_camel_case_types, missing_docs, clippy::all)]
        pub mod tock {
            #tock
        }

        pub use self::mmio::{QueueRegisters, Register, QUEUES, REGISTERS};

        #id_registers
    }
}
