//! `orch completions SHELL` prints a completion script; `--dir D` writes them under the names
//! each shell looks for (`orch.bash`, `_orch`, `orch.fish`, `orch.elv`, `_orch.ps1`).
//!
//! The scripts are clap_complete's dynamic ones: they ask `orch` itself what to offer
//! (`COMPLETE=<shell> orch -- <words>`), so subcommands and flags are always this binary's, and
//! `--project`, `--stage` and `--agent` offer the names the configuration defines now.

use anyhow::Result;
use clap::ValueEnum;
use clap_complete::{Generator, Shell};
use serde_json::json;

use crate::cli::CompletionsArgs;
use crate::commands::man;
use crate::exit;
use crate::output;
use crate::Ctx;

const BIN: &str = "orch";

pub fn run(ctx: &Ctx, args: &CompletionsArgs) -> Result<u8> {
    match (&args.dir, args.shell) {
        (Some(dir), shell) => {
            let shells = match shell {
                Some(shell) => vec![shell],
                None => Shell::value_variants().to_vec(),
            };
            let files: Vec<(String, Vec<u8>)> = shells
                .into_iter()
                .map(|shell| (shell.file_name(BIN), script(shell)))
                .collect();
            man::write_files(ctx, dir, &files)
        }
        (None, Some(shell)) if ctx.json() => {
            output::json(&json!({
                "shell": shell.to_string(),
                "file_name": shell.file_name(BIN),
                "script": String::from_utf8_lossy(&script(shell)),
            }))?;
            Ok(exit::OK)
        }
        (None, Some(shell)) => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            out.write_all(&script(shell))?;
            out.flush()?;
            Ok(exit::OK)
        }
        (None, None) => Err(exit::usage("completions: name a SHELL or give --dir")),
    }
}

pub fn script(shell: Shell) -> Vec<u8> {
    let name = match shell {
        Shell::Bash => "bash",
        Shell::Elvish => "elvish",
        Shell::Fish => "fish",
        Shell::PowerShell => "powershell",
        Shell::Zsh => "zsh",
        _ => "bash",
    };
    let mut text = Vec::new();
    if let Some(completer) = clap_complete::env::Shells::builtins().completer(name) {
        // Writing into a Vec cannot fail.
        let _ = completer.write_registration("COMPLETE", BIN, BIN, BIN, &mut text);
    }
    text
}
