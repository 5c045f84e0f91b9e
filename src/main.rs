use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = orch::cli::Cli::parse();
    match orch::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) if orch::exit::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("orch: error: {err:#}");
            ExitCode::from(orch::exit::code_of(&err))
        }
    }
}
