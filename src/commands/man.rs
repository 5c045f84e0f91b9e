//! `orch man --dir D`: the manual pages, `orch.1` and `orch-SUBCOMMAND.1` for each subcommand,
//! generated from the clap definitions so they never drift from `--help`.

use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use anyhow::{Context, Result};
use clap::CommandFactory;
use serde_json::json;

use crate::cli::{Cli, ManArgs};
use crate::exit;
use crate::output;
use crate::Ctx;

/// Generated documentation is for every user of the machine (and is committed to the
/// repository): readable by all, never a secret.
const PUBLIC_FILE: u32 = 0o644;
const PUBLIC_DIR: u32 = 0o755;

pub fn run(ctx: &Ctx, args: &ManArgs) -> Result<u8> {
    write_files(ctx, &args.dir, &pages()?)
}

/// Every page as (file name, roff text): the top command's, then each visible subcommand's.
pub fn pages() -> Result<Vec<(String, Vec<u8>)>> {
    let mut cli = Cli::command().disable_help_subcommand(true);
    cli.build();
    let mut pages = Vec::new();
    collect(&cli, &mut pages)?;
    Ok(pages)
}

fn collect(cmd: &clap::Command, pages: &mut Vec<(String, Vec<u8>)>) -> Result<()> {
    let man = clap_mangen::Man::new(cmd.clone());
    let mut text = Vec::new();
    man.render(&mut text)
        .with_context(|| format!("rendering the manual page of {}", cmd.get_name()))?;
    pages.push((man.get_filename(), text));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        collect(sub, pages)?;
    }
    Ok(())
}

/// Write generated files into `dir` (created if missing), each atomically, and list them on
/// stdout (or as JSON). Shared by `man` and `completions`.
pub fn write_files(ctx: &Ctx, dir: &Path, files: &[(String, Vec<u8>)]) -> Result<u8> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(PUBLIC_DIR)
        .create(dir)
        .with_context(|| format!("creating the directory {}", dir.display()))?;
    let mut written = Vec::with_capacity(files.len());
    for (name, bytes) in files {
        let path = dir.join(name);
        output::write_public_atomic(&path, bytes, PUBLIC_FILE)?;
        written.push(path);
    }
    if ctx.json() {
        output::json(&json!({ "dir": dir, "written": written }))?;
    } else {
        for path in &written {
            output::line(path.display().to_string())?;
        }
    }
    Ok(exit::OK)
}
