use anyhow::Result;
use serde_json::{json, Map, Value};

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
            values.insert(
                key.name.to_string(),
                json!({
                    "value": setting.as_ref().map(|s| s.value.clone()),
                    "source": setting.as_ref().map(|s| s.source),
                    "env": key.env(),
                }),
            );
        }
        output::json(&json!({
            "file": config.file,
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
    let mut out = vec![match &config.file {
        Some(file) => format!("config file: {}", file.display()),
        None => "config file: none (defaults and environment only)".to_string(),
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
        out.push(format!(
            "project {}: workdir {}, max_running {}, priority {}{}",
            project.name,
            project.workdir.display(),
            project.max_running,
            project.priority,
            forge
        ));
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
