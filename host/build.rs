//! Link options for the binaries, `tokenhost` (the lean front) and `tokenhost-engine`
//! (not the library, tests or benchmarks).
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
//!
//! `TOKENHOST_NO_PIE=1` at build time links a position-dependent executable instead: no
//! relocations to apply at all, which halves the start-up of `tokenhost token` through
//! a broker (see the README's benchmarks), at the price of ASLR for the executable's own
//! code and data (libraries, heap, stacks and plugin code stay randomised). That is a
//! packager's trade-off, so it is off by default.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=TOKENHOST_NO_PIE");
    let target = |key: &str| std::env::var(key).unwrap_or_default();
    if target("CARGO_CFG_TARGET_OS") != "linux" || target("CARGO_CFG_TARGET_ENV") != "gnu" {
        return;
    }
    if std::env::var_os("TOKENHOST_NO_PIE").is_some_and(|v| v == "1") {
        println!("cargo::rustc-link-arg-bins=-no-pie");
    } else {
        println!("cargo::rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
