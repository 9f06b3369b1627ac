//! `vscope-export`: parse the command line, run it, map the outcome to an exit code.

fn main() -> std::process::ExitCode {
    vscope_export::cli::main()
}
