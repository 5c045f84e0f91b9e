//! The cost report: the usage rollup (kept by a trigger as each run is finalized) and the runs
//! not finalized yet, grouped as asked.

use crate::store::sql::{params, Db, Row};
use anyhow::Result;

use crate::domain::usage::{Dim, Sums, DAY_MS, UNJUDGED};
use crate::store::{UsageKey, UsageQuery, UsageRow};

pub(super) fn report(conn: &Db, query: &UsageQuery) -> Result<Vec<UsageRow>> {
    let keys: Vec<String> = query
        .by
        .iter()
        .enumerate()
        // Both halves of the union name their columns as the dimensions are named.
        .map(|(i, dim)| format!("{} AS k{i}", dim.name()))
        .collect();
    let group: Vec<String> = (0..query.by.len()).map(|i| format!("k{i}")).collect();
    let select = keys.iter().map(|k| format!("{k}, ")).collect::<String>();
    let order = group.iter().map(|k| format!("{k}, ")).collect::<String>();
    // The runs not finalized yet walk agent_runs_unfinalized: their number, not the database's
    // size, is what this half costs; their task's key is looked up only when it is asked for.
    // Not by task, the rollup's rows of each day without the task (task '') answer: a few rows
    // a day, however many tasks there were.
    let (rollup, task, tasks) = if query.by.contains(&Dim::Task) {
        ("task <> ''", "t.key", "JOIN tasks t ON t.id = j.task_id")
    } else {
        ("task = ''", "''", "")
    };
    let sql = format!(
        "SELECT {select}class, sum(runs) AS runs, sum(priced_runs) AS priced_runs,
                total(cost_usd) AS cost_usd,
                sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
                sum(cache_read_tokens) AS cache_read_tokens,
                sum(cache_write_tokens) AS cache_write_tokens, sum(turns) AS turns,
                sum(wall_ms) AS wall_ms
         FROM (
             SELECT day, project, task, stage, agent, worker, class, runs, priced_runs, cost_usd,
                    input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, turns,
                    wall_ms
             FROM usage_rollup WHERE {rollup} AND day BETWEEN max(?1, ?5 + 1) AND ?2
             UNION ALL
             SELECT r.started_at / ?4, j.project, {task}, j.stage, r.agent, r.worker, ?3, 1, 0, 0.0,
                    0, 0, 0, 0, 0, max(coalesce(r.duration_ms, 0), 0)
             FROM agent_runs r INDEXED BY agent_runs_unfinalized
             JOIN jobs j ON j.id = r.job_id {tasks}
             WHERE r.finalized_at IS NULL AND r.started_at / ?4 BETWEEN ?1 AND ?2) AS u
         GROUP BY {order}class ORDER BY {order}class"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(
        params![
            query.since_day.unwrap_or(i64::MIN),
            query.until_day.unwrap_or(i64::MAX),
            UNJUDGED,
            DAY_MS,
            super::metrics::ALL_TIME
        ],
        |row| {
            let key = query
                .by
                .iter()
                .enumerate()
                .map(|(i, dim)| key(row, i, *dim))
                .collect::<crate::store::sql::Result<_>>()?;
            Ok(UsageRow {
                key,
                class: row.get("class")?,
                sums: sums(row)?,
            })
        },
    )?;
    Ok(rows.collect::<crate::store::sql::Result<_>>()?)
}

fn key(row: &Row, i: usize, dim: Dim) -> crate::store::sql::Result<UsageKey> {
    let name = format!("k{i}");
    Ok(match dim {
        Dim::Day => UsageKey::Day(row.get(name.as_str())?),
        _ => UsageKey::Text(row.get(name.as_str())?),
    })
}

/// A row's sums (`total()` is a float whatever it sums).
pub(super) fn sums(row: &Row) -> crate::store::sql::Result<Sums> {
    Ok(Sums {
        runs: row.get("runs")?,
        priced_runs: row.get("priced_runs")?,
        cost_usd: row.get("cost_usd")?,
        input_tokens: row.get("input_tokens")?,
        output_tokens: row.get("output_tokens")?,
        cache_read_tokens: row.get("cache_read_tokens")?,
        cache_write_tokens: row.get("cache_write_tokens")?,
        turns: row.get("turns")?,
        wall_ms: row.get("wall_ms")?,
    })
}
