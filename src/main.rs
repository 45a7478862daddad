//! The `reflex` binary: all the work lives in the library; see `reflex::cli`.

fn main() -> std::process::ExitCode {
    reflex::cli::main()
}
