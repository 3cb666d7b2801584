//! `generate!("path/to/spec")`: reads the YAML spec (relative to the crate that
//! invokes the macro), validates it and expands to the typed architecture.
//! A spec mistake becomes one `compile_error!` per problem, each naming the
//! file, line and entry.

use proc_macro::TokenStream;
use quote::quote;
use syn::{parse_macro_input, LitStr};

#[proc_macro]
pub fn generate(input: TokenStream) -> TokenStream {
    let lit = parse_macro_input!(input as LitStr);
    let base = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let dir = std::path::Path::new(&base).join(lit.value());
    match smmuv3_codegen::load(&dir) {
        Ok(spec) => {
            // Make every YAML file an input of the invoking crate, so that
            // editing one rebuilds it.
            let deps = spec.files.iter().map(|(name, _)| {
                let path = dir.join(name).display().to_string();
                quote!(
                    const _: &str = include_str!(#path);
                )
            });
            let body = smmuv3_codegen::expand(&spec);
            quote!(#(#deps)* #body).into()
        }
        Err(errors) => smmuv3_codegen::compile_errors(&errors, lit.span()).into(),
    }
}
