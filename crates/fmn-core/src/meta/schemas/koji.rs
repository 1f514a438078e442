//! `koji-fedoramessaging-messages`: Koji, the build system.

use serde_json::Value;

use super::facts::{fill, opt, strings, text, Facts};
use crate::meta::ctx::Ctx;
use crate::meta::py;

/// Koji's build states, by number.
const BUILD_STATES: [&str; 5] = ["BUILDING", "COMPLETE", "DELETED", "FAILED", "CANCELED"];

fn build_state(value: &Value) -> Option<&'static str> {
    BUILD_STATES
        .get(usize::try_from(value.as_u64()?).ok()?)
        .copied()
}

pub(super) fn describe(schema: &str, m: &Ctx<'_>) -> Option<Facts> {
    let class = schema.strip_prefix("koji_fedoramessaging.")?;
    let name_package = |path: &str| opt(m, path).filter(|n| !n.is_empty());
    let facts = match class {
        "build.BuildStateChangeV1" => {
            let owner = opt(m, "owner");
            let new = m.val("new");
            let finished = matches!(new.as_u64(), Some(1..=3));
            let agent = if m.val("old").is_null() || !finished {
                owner.clone()
            } else {
                None
            };
            let state = build_state(new).unwrap_or("None");
            Facts::short(
                "Koji",
                fill(
                    m,
                    &format!("Build {state}: {{owner}}'s {{name}}-{{version}}-{{release}}"),
                ),
            )
            .long(build_str(m, state))
            .url(opt(m, "url"))
            .packages(name_package("name"))
            .users(owner)
            .agent(agent)
        }
        "package.ListChangeV1" => {
            Facts::short("Koji", fill(m, "Package list change for {package}:  {tag}"))
                .packages(name_package("package"))
                .users(opt(m, "owner"))
                .agent(opt(m, "owner"))
        }
        "repo.DoneV1" | "repo.InitV1" => Facts::short("Koji", m.topic_str().to_owned()),
        "rpm.SignV1" => Facts::short(
            "Koji",
            fill(m, "rpm {rpm.name}-{rpm.version}-{rpm.release} was signed"),
        )
        .packages(name_package("build.name"))
        .users(opt(m, "build.owner_name"))
        .agent(opt(m, "build.owner_name")),
        "tag.TagV1" | "tag.UntagV1" => {
            let action = if class == "tag.TagV1" {
                "tagged into"
            } else {
                "untagged from"
            };
            Facts::short(
                "Koji",
                fill(
                    m,
                    &format!("{{name}}-{{version}}-{{release}} was {action} {{tag}} by {{user}}"),
                ),
            )
            .packages(name_package("name"))
            .users(strings(m, &["user", "owner"]))
            .agent(opt(m, "user"))
        }
        "task.TaskStateChangeV1" => {
            let or_empty = |path: &str| {
                m.get(path)
                    .filter(|v| py::truthy(v))
                    .map(py::str)
                    .unwrap_or_default()
            };
            let summary = format!(
                "Task {} -- {} ({} {})",
                text(m, "new"),
                or_empty("method"),
                or_empty("srpm"),
                or_empty("info.arch")
            );
            Facts::short("Koji", summary)
                .long(task_str(m.val("info"), &text(m, "files_base_url")))
                .url(opt(m, "info.url"))
                .users(opt(m, "owner"))
                .agent(opt(m, "owner"))
        }
        _ => return None,
    };
    // Only build and task state changes are at the default level.
    let chatter = !matches!(class, "build.BuildStateChangeV1" | "task.TaskStateChangeV1");
    Some(if chatter { facts.debug() } else { facts })
}

/// `BuildStateChangeV1.__str__`.
fn build_str(m: &Ctx<'_>, state: &str) -> String {
    let finished = date_to_string(m.val("completion_time"));
    let finished = if finished.is_empty() {
        "(still running)".to_owned()
    } else {
        finished
    };
    let mut out = format!(
        "Package:    {}-{}-{}\nStatus:     {}\nBuilt by:   {}\nID:         {}\nStarted:    {}\nFinished:   {finished}\n\n",
        text(m, "name"),
        text(m, "version"),
        text(m, "release"),
        state.to_lowercase(),
        text(m, "owner"),
        text(m, "build_id"),
        date_to_string(m.val("creation_time")),
    );
    match m.val("task") {
        Value::Null => out.push_str("Build imported into koji\n"),
        task => {
            out.push_str("Closed tasks:\n-------------\n");
            out.push_str(&task_str(task, &text(m, "files_base_url")));
        }
    }
    out
}

/// Koji's `fill_task_template`: a task, its result files and its sub-tasks.
fn task_str(task: &Value, files: &str) -> String {
    let host = task
        .get("host_name")
        .filter(|v| py::truthy(v))
        .map_or_else(|| "(unscheduled)".into(), py::str);
    let mut out = format!(
        "Task {} on {host}\nTask Type: {} ({})\nLink: {}\n",
        py::str(&task["id"]),
        py::str(&task["method"]),
        py::str(&task["arch"]),
        py::str(&task["url"]),
    );
    let result = &task["result"];
    if py::truthy(result) {
        for kind in ["logs", "rpms", "srpms"] {
            if let Some(items) = result
                .get(kind)
                .and_then(Value::as_array)
                .filter(|i| !i.is_empty())
            {
                out.push_str(&format!("{kind}:\n"));
                for item in items {
                    out.push_str(&format!("  {files}/{}\n", py::str(item)));
                }
            }
        }
        if let Some(item) = result.get("srpm") {
            out.push_str(&format!("srpm:\n  {files}/{}\n", py::str(item)));
        }
    }
    let mut children: Vec<&Value> = task["children"]
        .as_array()
        .map(|c| c.iter().collect())
        .unwrap_or_default();
    if !children.is_empty() {
        out.push_str(&format!(
            "\nTask {} has the following sub-tasks:\n",
            py::str(&task["id"])
        ));
    }
    // Python's sort is stable, so equal completion times keep their order.
    children.sort_by(|a, b| {
        let key = |t: &Value| t["completion_time"].as_f64().unwrap_or(0.0);
        key(a).total_cmp(&key(b))
    });
    for child in children {
        out.push('\n');
        out.push_str(&task_str(child, files));
    }
    out
}

/// Koji's `date_to_string`: `%a, %d %b %Y %H:%M:%S %Z` of an ISO 8601 time; empty when absent.
fn date_to_string(value: &Value) -> String {
    use crate::message::{parse_iso8601, IsoTime};
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second]"
    );
    match value.as_str().and_then(parse_iso8601) {
        Some(IsoTime::Offset(when)) => {
            // Python's `%Z` of a fixed offset: `UTC`, or `UTC+01:00`.
            let offset = when.offset();
            let zone = if offset.is_utc() {
                "UTC".to_owned()
            } else {
                let (h, mi, _) = offset.as_hms();
                let sign = if offset.is_negative() { '-' } else { '+' };
                format!("UTC{sign}{:02}:{:02}", h.abs(), mi.abs())
            };
            format!("{} {zone}", when.format(format).unwrap_or_default())
        }
        // A naive time has an empty `%Z`.
        Some(IsoTime::Naive(when)) => format!("{} ", when.format(format).unwrap_or_default()),
        None => String::new(),
    }
}
