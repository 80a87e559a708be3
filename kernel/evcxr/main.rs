//! evcxr_jupyter's own entry point, built against the patched evcxr (Cargo.toml says why).
fn main() -> anyhow::Result<()> {
    evcxr_jupyter::main()
}
