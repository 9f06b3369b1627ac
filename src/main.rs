//! `vscope-export`: parse the command line, run it, map the outcome to an exit code.

fn main() -> std::process::ExitCode {
    // Before the runtime starts any thread.
    vscope_export::sys::tune_allocator();
    vscope_export::cli::main()
}
