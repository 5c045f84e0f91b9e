//! `orch db copy --from PATH|URL --to PATH|URL`: a whole queue into an empty database.

use anyhow::Result;
use serde_json::json;

use crate::cli::{DbArgs, DbCommand, DbCopyArgs};
use crate::config::{self, Location};
use crate::store::Options;
use crate::{app, exit, output, Ctx};

pub fn run(ctx: &Ctx, args: &DbArgs) -> Result<u8> {
    match &args.command {
        DbCommand::Copy(copy) => run_copy(ctx, copy),
    }
}

/// A `--from`/`--to` value: a URL without a password, or a file path (relative to here).
fn location(flag: &str, value: &str) -> Result<Location> {
    if config::location::is_url(value) {
        config::check_db_url(value).map_err(|why| exit::usage(format!("{flag}: {why}")))?;
        return Ok(Location::Url(value.to_string()));
    }
    let path =
        std::path::absolute(value).map_err(|err| exit::usage(format!("{flag} {value}: {err}")))?;
    Ok(Location::File(path))
}

fn run_copy(ctx: &Ctx, args: &DbCopyArgs) -> Result<u8> {
    let (from, to) = (location("--from", &args.from)?, location("--to", &args.to)?);
    let host = ctx.config.host();
    let options = Options {
        location: &from,
        busy_timeout_ms: ctx.config.count(config::BUSY_TIMEOUT_MS),
        host: &host,
    };
    let copied = app::copy::copy(&from, &to, &options)?;
    if ctx.json() {
        output::json(&json!({ "from": from.to_string(), "to": to.to_string(), "tables": copied }))?;
    } else {
        for table in &copied {
            output::line(format!("{:<16} {:>10}", table.table, table.rows))?;
        }
        output::line(format!(
            "copied {from} into {to}; every table counts the same rows"
        ))?;
    }
    Ok(exit::OK)
}
