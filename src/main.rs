use std::process::ExitCode;

use clap::FromArgMatches;

fn main() -> ExitCode {
    // Started by git as its askpass during a push (see `orch::vcs::askpass`): answer, nothing else.
    if let Some(code) = orch::vcs::askpass::answer_if_asked() {
        return code;
    }
    // First, while orch has one thread and no child: secrets out of the environment.
    orch::secrets::init();
    // `COMPLETE=bash orch …` (the shell asking for completions) answers and exits here.
    clap_complete::CompleteEnv::with_factory(orch::cli::command).complete();
    let cli = match orch::cli::command()
        .try_get_matches()
        .and_then(|matches| orch::cli::Cli::from_arg_matches(&matches))
    {
        Ok(cli) => cli,
        Err(err) => return parse_error(&err),
    };
    match orch::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) if orch::exit::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            orch::output::diag(&format!("orch: error: {err:#}"));
            ExitCode::from(orch::exit::code_of(&err))
        }
    }
}

/// Print clap's verdict on the command line (help, version, or a usage error quoting what was
/// typed, which may hold anything) made safe for a terminal; the exit status is clap's (0 for help
/// and version, 2 for a usage error). A closed stdout (`orch --help | head -1`) is not an error.
fn parse_error(err: &clap::Error) -> ExitCode {
    let text = err.render().to_string();
    let text = text.trim_end();
    if err.use_stderr() {
        orch::output::diag(text);
    } else {
        let _ = orch::output::line(text);
    }
    ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2))
}
