//! Exports the C functions of libtorch's wrapper (tch's `atg_*`, `at_*`, ...) and of our shim
//! (`bf_*`) from the shared library. rustc's own version script exports only Rust symbols, but a
//! cell that calls a generic tch method (`reshape`, `view`, ...) compiles that method itself and
//! calls the C function directly: without this list the cell's library fails to load
//! (`undefined symbol: atg_reshape`). rust-lld merges the two scripts; named patterns win over
//! rustc's `local: *`.
fn main() {
    let map = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("exports.map");
    println!("cargo:rerun-if-changed={}", map.display());
    println!(
        "cargo:rustc-link-arg=-Wl,--version-script={}",
        map.display()
    );
}
