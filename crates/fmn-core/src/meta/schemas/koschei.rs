//! `koschei-messages`: Koschei, continuous integration of Fedora packages.

use super::facts::{fill, Facts};
use crate::meta::ctx::Ctx;

const BASE_URL: &str = "https://koschei.fedoraproject.org";

pub(super) fn describe(schema: &str, m: &Ctx<'_>) -> Option<Facts> {
    let (new, old) = (
        m.str("new").unwrap_or_default(),
        m.str("old").unwrap_or_default(),
    );
    let (mut info, url, packages) = match schema {
        "koschei.collection.state.change" => {
            let info = match (new, old) {
                ("ok", "unknown") => "{collection_name} added to Koschei",
                ("ok", _) => "{collection_name} buildroot was fixed",
                _ => "{collection_name} buildroot was broken",
            };
            (
                info.to_owned(),
                format!("{BASE_URL}/collection/{{collection}}"),
                vec![],
            )
        }
        "koschei.package.state.change" => {
            let info = match (new, old) {
                ("ok", "ignored") => "{name} added to Koschei",
                ("failing", _) => "{name}'s builds started to fail",
                ("ok", _) => "{name}'s builds are back to normal",
                ("ignored", _) => "{name} became retired or ignored",
                _ => "{name}'s dependencies failed to resolve",
            };
            let packages = m.str("name").map(str::to_owned).into_iter().collect();
            (
                format!("{info} in {{collection}}"),
                format!("{BASE_URL}/package/{{name}}?collection={{collection}}"),
                packages,
            )
        }
        _ => return None,
    };
    if m.str("koji_instance") != Some("primary") {
        info.push_str(" ({koji_instance})");
    }
    Some(
        Facts::short("Koschei", fill(m, &info))
            .url(Some(fill(m, &url)))
            .packages(packages)
            .groups(m.strs("groups")),
    )
}
