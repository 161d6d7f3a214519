fn main() -> std::process::ExitCode {
    seva::cli::main()
}
