use anyhow::Result;
use serde_json::{json, Map, Value};

use crate::config::Kind;
use crate::exit;
use crate::notify::{self, Switch};
use crate::output::{self, Table};
use crate::Ctx;

pub fn run(ctx: &Ctx) -> Result<u8> {
    let config = &ctx.config;
    let settings = config.settings();
    let alerts = notify::alerts_switch(config);
    let comments = notify::comments_switch(config);
    if ctx.json() {
        let mut values = Map::new();
        for (key, setting) in &settings {
            // Numbers as numbers and switches as booleans, like the file; unset is null, from
            // the default (as the text says).
            let value = setting.as_ref().map_or(Value::Null, |s| match key.kind {
                Kind::Count { .. } => s
                    .value
                    .trim()
                    .parse::<u64>()
                    .map_or(Value::Null, Value::from),
                Kind::Bool => crate::config::parse_bool(&s.value).map_or(Value::Null, Value::from),
                _ => Value::from(s.value.clone()),
            });
            let source = setting
                .as_ref()
                .map_or("default".to_string(), |s| s.source.to_string());
            values.insert(
                key.name.to_string(),
                json!({ "value": value, "source": source, "env": key.env() }),
            );
        }
        let problems: Map<String, Value> = config
            .projects
            .values()
            .filter_map(|p| Some((p.name.clone(), Value::from(p.workdir_problem()?))))
            .collect();
        let budget_blind: Map<String, Value> = config
            .projects
            .values()
            .map(|p| (p.name.clone(), json!(config.budget_blind_stages(p))))
            .filter(|(_, stages)| stages.as_array().is_some_and(|s| !s.is_empty()))
            .collect();
        output::json(&json!({
            "file": config.file,
            "looked_for": config.looked_for,
            "problems": problems,
            "budget_blind_stages": budget_blind,
            "settings": Value::Object(values),
            "projects": config.projects,
            "pipeline": { "stages": config.stages },
            "stages": config.stage_settings,
            "agents": config.agents,
            "secret_env": config.secret_env,
            "alerts": alerts,
            "comments": comments,
        }))?;
        return Ok(exit::OK);
    }
    let paint = ctx.paint();
    let mut out = vec![match (&config.file, &config.looked_for) {
        (Some(file), _) => format!("config file: {}", file.display()),
        (None, Some(path)) => format!(
            "config file: none — {} does not exist (defaults and environment only)",
            path.display()
        ),
        (None, None) => "config file: none (defaults and environment only)".to_string(),
    }];
    let mut table = Table::new(&["SETTING", "VALUE", "SOURCE", "ENV"]);
    for (key, setting) in &settings {
        let (value, source) = match setting {
            Some(s) => (s.value.clone(), s.source.to_string()),
            None => ("(unset)".to_string(), "default".to_string()),
        };
        table.row(vec![
            key.name.to_string(),
            value,
            paint.dim(&source),
            key.env(),
        ]);
    }
    out.push(String::new());
    out.push(table.render(paint));
    out.push(paint.dim(
        "paths are absolute, ~ expanded: a relative one is refused in the file and the \
         environment, and taken from the current directory in a flag",
    ));
    out.push(String::new());
    out.push(format!("pipeline: {}", config.stages.join(" → ")));
    if config.projects.is_empty() {
        out.push("projects: none (add [projects.NAME] with a workdir)".to_string());
    }
    for project in config.projects.values() {
        let forge = project
            .forge
            .as_ref()
            .map(|f| format!(", forge {:?} {}", f.kind, f.repo).to_lowercase())
            .unwrap_or_default();
        let tasks = match project.worktrees {
            true => format!(
                ", a worktree and a branch ({}) per task",
                project.branch_template
            ),
            false => ", tasks in place (worktrees = false)".to_string(),
        };
        out.push(format!(
            "project {}: workdir {}, max_running {}, priority {}{forge}{tasks}",
            project.name,
            project.workdir.display(),
            project.max_running(),
            project.priority,
        ));
        if let Some(problem) = project.workdir_problem() {
            out.push(format!("  {} {problem}", paint.fail("problem:")));
        }
        let blind = config.budget_blind_stages(project);
        if !blind.is_empty() {
            out.push(format!(
                "  {} its budgets do not see the cost of stage {}: their agents report none; \
                 give the profile a price table ([agents.NAME] prices) to count it",
                paint.warn("warning:"),
                blind.join(", ")
            ));
        }
    }
    out.push(switch("alerts", &alerts));
    out.push(switch("usage comments", &comments));
    output::line(out.join("\n"))?;
    Ok(exit::OK)
}

/// "alerts: off (ORCH_TELEGRAM_BOT_TOKEN not set)".
fn switch(what: &str, switch: &Switch) -> String {
    let state = if switch.on { "on" } else { "off" };
    format!("{what}: {state} ({})", switch.detail)
}
