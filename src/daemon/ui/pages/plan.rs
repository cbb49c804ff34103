//! `/plan`: a pasted rule checked and evaluated on the snapshot in force, never stored.

use super::*;

/// The longest rule the preview takes.
pub(super) const MAX_PREVIEW_RULE: usize = 16 * 1024;
/// Members shown of a previewed rule.
pub(super) const PREVIEW_SAMPLE: usize = 25;

#[derive(serde::Deserialize, Default)]
pub struct PreviewQuery {
    rule: Option<String>,
}

/// What a pasted rule would select on the snapshot in force, under the rules in force (so
/// `member_of` works): its member count and a sample. It is checked like a rule file and
/// never stored; a GET, so it changes nothing and can be linked to.
pub async fn preview(
    State(shared): State<Ui>,
    Extension(person): Extension<Person>,
    Query(q): Query<PreviewQuery>,
) -> PageResult {
    let rule = q.rule.unwrap_or_default();
    let rule = rule.trim();
    let outcome = if rule.is_empty() {
        None
    } else if rule.len() > MAX_PREVIEW_RULE
        || rule
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\r')
    {
        Some(Err(format!(
            "a rule is printable text of at most {} KiB",
            MAX_PREVIEW_RULE / 1024
        )))
    } else {
        let e = match crate::daemon::evaluated(&shared).await? {
            Some(e) => e,
            None => return Ok(no_snapshot(&person)),
        };
        let config = shared.config();
        let rule = rule.to_string();
        Some(tokio::task::spawn_blocking(move || preview_rule(&config, &e, &rule)).await?)
    };
    let body = html! {
        p.muted { "Paste a rule expression (as in a rule file's " code { "rule:" } "). It is evaluated on the snapshot in force under the rules in force, and never stored." }
        form method="get" action="/plan" {
            textarea name="rule" rows="4" cols="90" aria-label="Rule" { (rule) }
            br;
            button type="submit" { "Plan" }
        }
        @match &outcome {
            None => {},
            Some(Err(diagnostics)) => { h2 { "The rule does not check" } pre { (diagnostics) } },
            Some(Ok(p)) => {
                h2 { (thousands(p.members as u64)) " of " (thousands(p.workers as u64)) " workers" }
                p.muted { "As of " (p.as_of) ", snapshot " (p.snapshot) "." }
                @if !p.sample.is_empty() {
                    p { "The first " (p.sample.len()) ":" }
                    ul { @for (key, label) in &p.sample {
                        li { a href=(format!("/workers/{}", seg(key))) { (label) } }
                    } }
                }
            },
        }
    };
    Ok(page("Plan a rule", &person, body).into_response())
}

pub(super) struct Preview {
    members: usize,
    workers: usize,
    as_of: String,
    snapshot: i64,
    sample: Vec<(String, String)>,
}

/// Checks `rule` as the rule of one more managed group beside the rules in force, and
/// evaluates it.
pub(super) fn preview_rule(
    config: &crate::config::Config,
    e: &crate::daemon::Evaluated,
    rule: &str,
) -> Result<Preview, String> {
    let mut name = "console-preview".to_string();
    while e.rules.lookup(&name).is_some() {
        name.push('-');
    }
    // A block scalar: every line of the rule indented, whatever it holds.
    let mut yaml = format!("groups:\n  - name: {name}\n    kind: managed\n    rule: |-\n");
    for line in rule.lines() {
        yaml.push_str("      ");
        yaml.push_str(line);
        yaml.push('\n');
    }
    // The rule files in force, read as they were loaded (the eligibility expression's
    // config file among the sources is not a rule file), and the preview.
    let mut sources = crate::rules::SourceMap::default();
    for file in e.rules.sources().files() {
        if file.path != config.path {
            sources.add(file.name.clone(), &file.path, file.text.clone());
        }
    }
    sources.add(
        "(the rule pasted in the console)",
        std::path::Path::new("console"),
        yaml,
    );
    let schema = crate::directory::Schema::from_config(&config.directory);
    let rules = crate::rules::check_sources(
        sources,
        &crate::rules::Context::from_config(config, &schema),
    )
    .map_err(|err| err.to_string())?;
    let id = rules
        .lookup(&name)
        .ok_or_else(|| "the previewed group was not checked".to_string())?;
    let evaluation = crate::engine::evaluate(&e.snapshot, &rules, e.evaluation.as_of);
    let members = evaluation.members(id);
    Ok(Preview {
        members: members.count_ones(..),
        workers: e.snapshot.len(),
        as_of: e.evaluation.as_of.to_string(),
        snapshot: e.snapshot_id,
        sample: members
            .ones()
            .take(PREVIEW_SAMPLE)
            .map(|w| (e.snapshot.key(w).to_string(), e.snapshot.label(w)))
            .collect(),
    })
}
