//! `orch prune-worktrees [--dry-run]`: remove the worktrees a crash left behind on this host.
//! The work is `app::branches::prune`'s, which a general prune can call too.

use anyhow::Result;
use serde_json::json;

use crate::cli::PruneWorktreesArgs;
use crate::exit;
use crate::output::{self, Table};
use crate::Ctx;

pub fn run(ctx: &Ctx, args: &PruneWorktreesArgs) -> Result<u8> {
    let mut store = ctx.store()?;
    let pruned = crate::app::branches::prune(&ctx.config, &mut *store, args.dry_run)?;
    if ctx.json() {
        output::json(&json!({ "dry_run": args.dry_run, "worktrees": pruned }))?;
        return Ok(exit::OK);
    }
    if pruned.is_empty() {
        output::line("nothing to prune: every worktree here belongs to a live task")?;
        return Ok(exit::OK);
    }
    let paint = ctx.paint();
    let mut table = Table::new(&["PROJECT", "TASK", "WORKTREE", "WHY", "DONE"]);
    for p in &pruned {
        let done = match (&p.error, args.dry_run) {
            (Some(error), _) => paint.fail(&format!("kept: {error}")),
            (None, true) => "would remove".to_string(),
            (None, false) => paint.pass("removed"),
        };
        table.row(vec![
            p.project.clone(),
            p.task.clone().unwrap_or_else(|| "·".to_string()),
            p.path.display().to_string(),
            p.why.clone(),
            done,
        ]);
    }
    output::line(table.render(paint))?;
    Ok(exit::OK)
}
