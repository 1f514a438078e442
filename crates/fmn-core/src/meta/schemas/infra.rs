//! More single-class schema packages: `fedora-image-uploader-messages`, `kerneltest-messages`,
//! `maubot-fedora-messages` (the Matrix bot's cookies), `mdapi-messages`, `nuancier-messages`
//! and `tahrir-messages` (Fedora Badges).

use super::facts::{fill, join, opt, text, Facts};
use crate::meta::ctx::Ctx;

const UPLOADER: &str = "fedora-image-uploader";

pub(super) fn describe(schema: &str, m: &Ctx<'_>) -> Option<Facts> {
    let facts = match schema {
        "fedora_image_uploader.published.v1.aws" => {
            let regions: Vec<String> = m
                .get("regions")
                .and_then(|r| r.as_object())
                .map(|r| r.iter().map(|(region, id)| format!("{region} as {}", crate::meta::py::str(id))).collect())
                .unwrap_or_default();
            let count = m.get("regions").and_then(|r| r.as_object()).map_or(0, |r| r.len());
            Facts::short(UPLOADER, fill(m, &format!("{UPLOADER} published AWS images from compose {{compose_id}} as {{image_name}} in {count} regions")))
                .long(format!(
                    "{}{}\n",
                    fill(m, "A new image has been published to Amazon Web Services:\n\n\tArchitecture: {architecture}\n\tCompose ID: {compose_id}\n\tImage Name: {image_name}\n\tRegions: "),
                    regions.join(", ")
                ))
        }
        "fedora_image_uploader.published.v1.azure" => Facts::short(
            UPLOADER,
            fill(m, &format!("{UPLOADER} published Azure image from compose {{compose_id}} as version {{image_version_name}} to {{image_definition_name}}")),
        )
        .long(fill(m, "A new image has been published to the Azure image gallery:\n\n\tArchitecture: {architecture}\n\tCompose ID: {compose_id}\n\tImage Definition Name: {image_definition_name}\n\tImage Version Name: {image_version_name}\n\tImage Resource ID: {image_resource_id}\n\tRegions: {regions|, }\n")),
        "fedora_image_uploader.published.v1.container" => {
            let repository = text(m, "repository");
            let mut facts = Facts::short(UPLOADER, fill(m, &format!("{UPLOADER} published container manifest from compose {{compose_id}} to {{registries|, }}.")))
                .long(fill(m, "A new container manifest has been published:\n\n\tCompose ID: {compose_id}\n\tRegistries: {registries|, }\n\tRepository: {repository}\n\tTags: {tags|, }\n\tArchitectures: {architectures|, }\n"));
            facts.containers = m
                .strs("registries")
                .flat_map(|registry| m.strs("tags").map(move |tag| (registry, tag)))
                .map(|(registry, tag)| format!("{registry}/{repository}:{tag}"))
                .collect();
            facts
        }
        "fedora_image_uploader.published.v1.gcp" => Facts::short(
            UPLOADER,
            fill(m, &format!("{UPLOADER} published the {{architecture}} image from compose {{compose_id}} to the {{family}} family in Google Cloud Platform")),
        )
        .long(fill(m, "A new image has been published to Google Cloud Platform:\n\n\tArchitecture: {architecture}\n\tCompose ID: {compose_id}\n\tFamily: {family}\n\tImage Name: {image_name}\n\tImage URL: {image_url}\n")),
        "kerneltest.upload.new.v1" | "kerneltest.release.new.v1" | "kerneltest.release.edit.v1" => {
            let template = match schema {
                "kerneltest.upload.new.v1" => "{agent} uploaded new kernel test results for {test.kernel_version}",
                "kerneltest.release.new.v1" => "{agent} created a new release {release.releasenum} with status {release.support}",
                _ => "{agent} edited release {release.releasenum} with status {release.support}",
            };
            Facts::short("kerneltest", fill(m, template)).agent(opt(m, "agent"))
        }
        "maubot.cookie.give.v1" => {
            let release = text(m, "fedora_release");
            let this_release = m
                .get("count_by_release")
                .and_then(|counts| counts.get(&release))
                .map_or_else(|| "None".to_owned(), crate::meta::py::str);
            let agent = opt(m, "sender");
            Facts::short("Maubot Fedora", fill(m, "{sender} gave a cookie to {recipient}"))
                .long(fill(m, &format!(
                    "{{sender}} gave a cookie to {{recipient}}. They now have {{total}} cookie(s), {this_release} of which were obtained in the Fedora {release} release cycle"
                )))
                .users([agent.clone(), opt(m, "recipient")].into_iter().flatten())
                .agent(agent)
        }
        "mdapi.repo.update" => Facts::short(
            "mdapi",
            format!("MDAPI updated repo {} with new details for {} packages", text(m, "name"), m.arr("packages").len()),
        )
        .long(format!(
            "MDAPI updated repo {} with new details for the packages: {}",
            text(m, "name"),
            join(m, "packages", ", ")
        )),
        "nuancier.new" => Facts::short("nuancier", fill(m, "{agent} created thing \"{thing.name}\" ({thing.id})"))
            .long(fill(m, "New Thing: {thing.name}\nBy: {agent}\n"))
            .url(opt(m, "thing.url"))
            .users(opt(m, "agent")),
        "badges.person.login.first.v1" => {
            let agent = opt(m, "user.username");
            Facts::short("tahrir", fill(m, "{user.username} logged into badges for the first time"))
                .users(agent.clone())
                .agent(agent)
        }
        "badges.badge.award.v1" => Facts::short("tahrir", fill(m, "{user.username} was awarded the badge `{badge.name}`"))
            .long(text(m, "badge.description"))
            .users(opt(m, "user.username")),
        "badges.person.rank.advance.v1" => Facts::short(
            "tahrir",
            fill(m, "{person.nickname}'s Badges rank changed from {old_rank} to {person.rank}"),
        )
        .users(opt(m, "person.nickname")),
        _ => return None,
    };
    Some(facts)
}
