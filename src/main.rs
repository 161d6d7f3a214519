// mimalloc instead of glibc's malloc: allocation was about a quarter of Seva's CPU under load
// (request and row buffers freed on other threads), and mimalloc serves it for less. Measured
// in BENCHMARKS.md, with its cost in peak RSS. v2 rather than v3: as fast here, less memory.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    seva::cli::main()
}
