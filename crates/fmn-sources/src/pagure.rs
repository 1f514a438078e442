//! dist-git's Pagure (src.fedoraproject.org): the published owner map
//! (`/extras/pagure_owner_alias.json`), groups (`/api/0/group/{group}?projects=1`) and
//! projects with their ACLs (`/api/0/projects?namespace=…&page=…&per_page=…`,
//! `/api/0/{namespace}/{name}`). Lists are paged with `page` and `per_page`; the answer's
//! `pagination` object says how many `pages` there are. Errors are
//! `{"error": …, "error_code": …}`.

use std::collections::BTreeMap;

use serde::Deserialize;

use fmn_core::ownership::{parse_owner_alias, OwnerAlias, Owners};
use fmn_core::rules::{Artifact, ArtifactKind};

use crate::http::{JsonClient, SourceError, SourceSettings};

const SERVICE: &str = "Pagure";
const PER_PAGE: u32 = 100;

/// A project and its ACLs (`access_users` / `access_groups`: level → names).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct PagureProject {
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub access_users: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub access_groups: BTreeMap<String, Vec<String>>,
}

/// The ACL levels that make someone a maintainer (the owner map lists these; `ticket` does not
/// count).
const MAINTAINER_LEVELS: [&str; 4] = ["owner", "admin", "commit", "collaborator"];

impl PagureProject {
    /// The artifact this project is, if its namespace is one fmn tracks.
    pub fn artifact(&self) -> Option<Artifact> {
        let kind = ArtifactKind::from_namespace(self.namespace.as_deref()?)?;
        Some(Artifact::new(kind, self.name.clone()))
    }

    /// Its maintainers as the owner map would list them.
    pub fn owners(&self) -> Owners {
        let gather = |acl: &BTreeMap<String, Vec<String>>| {
            let mut names: Vec<String> = MAINTAINER_LEVELS
                .iter()
                .filter_map(|level| acl.get(*level))
                .flatten()
                .cloned()
                .collect();
            names.sort();
            names.dedup();
            names
        };
        Owners {
            users: gather(&self.access_users),
            groups: gather(&self.access_groups),
        }
    }
}

/// A group (`/api/0/group/{group}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct PagureGroup {
    pub name: String,
    #[serde(default)]
    pub members: Vec<String>,
    /// With `projects=1` only.
    #[serde(default)]
    pub projects: Vec<PagureProject>,
}

#[derive(Debug, Deserialize)]
struct Pagination {
    page: u32,
    pages: u32,
}

#[derive(Debug, Deserialize)]
struct ProjectsPage {
    projects: Vec<PagureProject>,
    pagination: Option<Pagination>,
}

#[derive(Debug, Deserialize)]
struct GroupPage {
    #[serde(flatten)]
    group: PagureGroup,
    pagination: Option<Pagination>,
}

/// A Pagure client.
#[derive(Debug, Clone)]
pub struct Pagure {
    client: JsonClient,
}

impl Pagure {
    pub fn new(settings: &SourceSettings) -> Self {
        Self {
            client: JsonClient::new(SERVICE, &settings.pagure_url, settings.timeout, None),
        }
    }

    /// The published owner map: every rpm, container, module and flatpak with its maintainers.
    pub async fn owner_alias(&self) -> Result<OwnerAlias, SourceError> {
        let path = "/extras/pagure_owner_alias.json";
        let raw: serde_json::Value = self.client.get(path, &[]).await?;
        parse_owner_alias(&raw.to_string()).map_err(|e| SourceError::Malformed {
            service: SERVICE,
            url: format!("{}{path}", self.client.base),
            detail: e.to_string(),
        })
    }

    /// A group with its members (and, with `projects`, the projects it has access to, every
    /// page); None when Pagure does not know it.
    pub async fn group(
        &self,
        name: &str,
        projects: bool,
    ) -> Result<Option<PagureGroup>, SourceError> {
        let path = format!("/api/0/group/{name}");
        let mut out: Option<PagureGroup> = None;
        let mut page = 1;
        loop {
            let mut q = vec![("page", page.to_string())];
            if projects {
                q.push(("projects", "1".into()));
                q.push(("per_page", PER_PAGE.to_string()));
            }
            let got: GroupPage = match self.client.get(&path, &q).await {
                Ok(g) => g,
                Err(e) if e.is_not_found() => return Ok(None),
                Err(e) => return Err(e),
            };
            match &mut out {
                None => out = Some(got.group),
                Some(g) => g.projects.extend(got.group.projects),
            }
            match got.pagination {
                Some(p) if projects && p.page < p.pages => page += 1,
                _ => return Ok(out),
            }
        }
    }

    /// One project with its ACLs; None when it does not exist (any more).
    pub async fn project(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<PagureProject>, SourceError> {
        match self
            .client
            .get(&format!("/api/0/{namespace}/{name}"), &[])
            .await
        {
            Ok(p) => Ok(Some(p)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every project of a namespace with its ACLs (forks left out), page by page.
    pub async fn projects(&self, namespace: &str) -> Result<Vec<PagureProject>, SourceError> {
        let mut out = Vec::new();
        let mut page = 1;
        loop {
            let q = [
                ("namespace", namespace.to_string()),
                ("fork", "false".to_string()),
                ("page", page.to_string()),
                ("per_page", PER_PAGE.to_string()),
            ];
            let got: ProjectsPage = self.client.get("/api/0/projects", &q).await?;
            out.extend(got.projects);
            match got.pagination {
                Some(p) if p.page < p.pages => page += 1,
                _ => return Ok(out),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_acls_make_owners() {
        // The shape of Pagure's project JSON (`/api/0/<namespace>/<repo>`).
        let json = r#"{"access_groups": {"admin": [], "collaborator": [],
            "commit": ["python-sig"], "ticket": ["triagers"]},
            "access_users": {"admin": ["bob"], "collaborator": [], "commit": ["carol"],
            "owner": ["alice"], "ticket": ["dave"]},
            "close_status": [], "custom_keys": [], "date_created": "1431549490",
            "description": "foo", "fullname": "rpms/foo", "id": 1, "milestones": {},
            "name": "foo", "namespace": "rpms", "parent": null, "priorities": {},
            "tags": [], "user": {"fullname": "Alice", "name": "alice"}}"#;
        let p: PagureProject = serde_json::from_str(json).unwrap();
        assert_eq!(p.artifact(), Some(Artifact::new(ArtifactKind::Rpms, "foo")));
        let owners = p.owners();
        assert_eq!(owners.users, ["alice", "bob", "carol"]);
        assert_eq!(owners.groups, ["python-sig"]);
    }
}
