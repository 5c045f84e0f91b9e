use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // First, while orch has one thread and no child: secrets out of the environment.
    orch::secrets::init();
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
