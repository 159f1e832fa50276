//! Link options for the `tokenhost` binary (not the library, tests or benchmarks).
//!
//! On Linux with glibc the binary is linked with packed relative relocations
//! (`-z pack-relative-relocs`, DT_RELR): a position-independent executable of this size
//! carries some 56,000 relative relocations, which as classic RELA entries are 1.3 MB
//! that the dynamic loader reads at every start; as RELR they are 14 KB. `tokenhost
//! token` is run as a credential command over and over, so its start-up is its cost
//! (see `benches/cli.rs`). The binary stays position-independent (ASLR) with full RELRO.
//! The loader must understand DT_RELR: glibc 2.36 or later (the linker records that as a
//! version dependency, so an older glibc refuses the binary by name instead of running
//! it; linkers that do not know the option warn and ignore it).

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let target = |key: &str| std::env::var(key).unwrap_or_default();
    if target("CARGO_CFG_TARGET_OS") == "linux" && target("CARGO_CFG_TARGET_ENV") == "gnu" {
        println!("cargo::rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
