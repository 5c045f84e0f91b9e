//! `orch man --dir D`: the manual pages, `orch.1` and `orch-SUBCOMMAND.1` for each subcommand,
//! generated from the clap definitions so they never drift from `--help`.

use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use anyhow::{Context, Result};
use clap_mangen::roff::{bold, roman, Roff};
use serde_json::json;

use crate::cli::ManArgs;
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
    let mut cli = crate::cli::command().disable_help_subcommand(true);
    cli.build();
    let mut pages = Vec::new();
    collect(&cli, true, &mut pages)?;
    Ok(pages)
}

fn collect(cmd: &clap::Command, top: bool, pages: &mut Vec<(String, Vec<u8>)>) -> Result<()> {
    // The footer names the program and its version (not the subcommand), the header the manual.
    let man = clap_mangen::Man::new(cmd.clone())
        .source(format!("orch {}", env!("CARGO_PKG_VERSION")))
        .manual("orch manual");
    let mut text = Vec::new();
    let rendered = (|| -> std::io::Result<()> {
        man.render_title(&mut text)?;
        man.render_name_section(&mut text)?;
        man.render_synopsis_section(&mut text)?;
        man.render_description_section(&mut text)?;
        man.render_options_section(&mut text)?;
        if top {
            man.render_subcommands_section(&mut text)?;
        }
        sections(cmd, top).to_writer(&mut text)
    })();
    rendered.with_context(|| format!("rendering the manual page of {}", cmd.get_name()))?;
    pages.push((man.get_filename(), text));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        collect(sub, false, pages)?;
    }
    Ok(())
}

/// EXIT STATUS, ENVIRONMENT, FILES and SEE ALSO: the top page lists every exit status and every
/// setting's variable; a subcommand's page its own statuses and the variables every command reads.
fn sections(cmd: &clap::Command, top: bool) -> Roff {
    let mut roff = Roff::new();
    roff.control("SH", ["EXIT STATUS"]);
    let statuses: Vec<(u8, &str)> = if top {
        exit::TABLE.to_vec()
    } else {
        exit::statuses(cmd.get_name())
    };
    for (code, meaning) in statuses {
        roff.control("TP", [])
            .text([bold(code.to_string())])
            .text([roman(meaning)]);
    }
    roff.control("SH", ["ENVIRONMENT"]);
    let common = [
        ("ORCH_CONFIG", "The configuration file (default $XDG_CONFIG_HOME/orch/config.toml, else ~/.config/orch/config.toml)."),
        ("ORCH_DB", "The database: an SQLite file (default $XDG_STATE_HOME/orch/orch.db, else ~/.local/state/orch/orch.db) or a postgres:// URL without its password."),
        ("PGPASSWORD", "The PostgreSQL password (or ORCH_DB_PASSWORD_FILE, a file holding it, or ~/.pgpass); taken out of the environment at start-up."),
        ("XDG_CONFIG_HOME, XDG_STATE_HOME, HOME", "Where the defaults above live; absolute paths only."),
        ("NO_COLOR, TERM", "No colour when NO_COLOR is set and not empty, or TERM is dumb (--color overrides)."),
        ("COLUMNS", "The width text for people is wrapped at (default: the terminal's)."),
    ];
    for (name, meaning) in common {
        roff.control("TP", [])
            .text([bold(name)])
            .text([roman(meaning)]);
    }
    if top {
        for key in crate::config::KEYS {
            roff.control("TP", [])
                .text([bold(key.env())])
                .text([roman(format!("The setting {}: {}.", key.name, key.doc))]);
        }
    } else {
        roff.control("TP", []).text([bold("ORCH_<SETTING>")]).text([roman(
            "Every setting has a variable of its name in upper case behind ORCH_ (lease_seconds is \
             ORCH_LEASE_SECONDS); orch(1) lists them.",
        )]);
    }
    roff.control("SH", ["FILES"]);
    let files = [
        (
            "$XDG_CONFIG_HOME/orch/config.toml",
            "The configuration: settings, projects, the pipeline, stages and agents.",
        ),
        (
            "$XDG_STATE_HOME/orch/orch.db",
            "The queue: tasks, jobs, their history, runs, the outbox (SQLite, WAL).",
        ),
        (
            "$XDG_STATE_HOME/orch/logs/",
            "One log per run (job-J-run-R.log) and each worker's tick lock; log_dir moves it.",
        ),
    ];
    for (path, meaning) in files {
        roff.control("TP", [])
            .text([bold(path)])
            .text([roman(meaning)]);
    }
    roff.control("SH", ["SEE ALSO"]);
    let see = if top {
        "orch-tick(1), orch-preflight(1), orch-jobs(1); the README.md of orch's repository, the \
         user's manual"
            .to_string()
    } else {
        "orch(1)".to_string()
    };
    roff.text([roman(see)]);
    roff
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
