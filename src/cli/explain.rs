//! `rosterd explain WORKER [GROUP]`: why a worker is, or is not, in a group.

use super::{print, print_json, CliError, Format, Global, Workspace};
use crate::engine;

pub fn explain(global: &Global, worker: &str, group: Option<&str>) -> Result<(), CliError> {
    let ws = Workspace::load(global)?;
    let w = ws.worker(worker)?;
    let evaluation = ws.evaluate(global.as_of());
    let groups: Vec<usize> = match group {
        Some(name) => vec![ws.group(name)?],
        None => evaluation.groups_of(w),
    };
    let explanations: Vec<engine::Explanation> = groups
        .iter()
        .map(|&g| engine::explain(&ws.snapshot, &ws.rules, &evaluation, w, g))
        .collect();
    if global.format == Format::Json {
        let value = serde_json::to_value(&explanations).map_err(|e| CliError::Output(e.into()))?;
        return print_json(&value);
    }
    let mut out = String::new();
    if group.is_none() {
        out.push_str(&format!(
            "{} is in {} of {} as of {}\n\n",
            ws.snapshot.label(w),
            groups.len(),
            crate::text::count(ws.rules.groups().len() as u64, "group"),
            evaluation.as_of
        ));
    }
    for e in &explanations {
        out.push_str(&e.render());
        out.push('\n');
    }
    if group.is_none() && groups.len() < ws.rules.groups().len() {
        out.push_str(
            "name a group to see why the worker is not in it: rosterd explain WORKER GROUP\n",
        );
    }
    print(&out)
}
