//! The `ecosim` binary: a thin entry over [`ecosim_harness::cli`].

// mimalloc: about a tenth of the CPU of a CUN journey went to glibc's malloc and free.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    ecosim_harness::cli::main()
}
