//! The `ecosim` binary: a thin entry over [`ecosim_harness::cli`].

fn main() -> std::process::ExitCode {
    ecosim_harness::cli::main()
}
