//! The command line: argument parsing, exit codes, the summary printer.

pub fn main() -> std::process::ExitCode {
    std::process::ExitCode::SUCCESS
}
