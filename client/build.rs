//! Generates the API client from the committed `openapi.json` with
//! progenitor, at build time: the document is the only input.

fn main() {
    let document = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.json");
    println!("cargo:rerun-if-changed={document}");
    let text =
        std::fs::read_to_string(document).unwrap_or_else(|e| panic!("cannot read {document}: {e}"));
    let spec = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{document} is not an OpenAPI 3.0 document: {e}"));
    // Every generated call carries the caller's credentials and is signed
    // as it leaves (a Hawk header covers method, URL, body and a fresh
    // nonce, so it cannot be a default header).
    let mut settings = progenitor::GenerationSettings::default();
    settings
        .with_inner_type(quote::quote!(crate::auth::Credentials))
        .with_pre_hook_async(quote::quote!(crate::auth::sign));
    let mut generator = progenitor::Generator::new(&settings);
    let tokens = generator
        .generate_tokens(&spec)
        .unwrap_or_else(|e| panic!("progenitor cannot generate a client from {document}: {e}"));
    let file = syn::parse2(tokens).unwrap_or_else(|e| panic!("generated code does not parse: {e}"));
    let out =
        std::path::Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("api.rs");
    std::fs::write(&out, prettyplease::unparse(&file))
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
}
