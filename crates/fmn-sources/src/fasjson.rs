//! FASJSON, the JSON front of Fedora's account system (FreeIPA): `/v1/users/`,
//! `/v1/users/{name}/`, `/v1/groups/`, `/v1/groups/{group}/members/` and
//! `/v1/search/users/`. Every answer is `{"result": …}`; a paged one also has
//! `"page": {"total_results", "page_size", "page_number", "total_pages", "next_page"?}`, asked
//! for with `page_size` and `page_number` (from 1).

use futures::stream::{self, StreamExt, TryStreamExt};
use serde::Deserialize;

use fmn_core::directory::{Account, Directory};

use crate::http::{JsonClient, SourceError, SourceSettings};

const SERVICE: &str = "FASJSON";

/// A user as FASJSON describes one (the fields fmn reads).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct FasUser {
    pub username: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub emails: Vec<String>,
    /// `irc:/nick`, `matrix:/user`, `matrix://server/user`.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub ircnicks: Vec<String>,
    #[serde(default)]
    pub locked: bool,
}

impl FasUser {
    pub fn account(&self) -> Account {
        Account {
            emails: self.emails.clone(),
            ircnicks: self.ircnicks.clone(),
            locked: self.locked,
        }
        .normalised()
    }
}

/// FASJSON writes `null` for an attribute a user never set.
fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

/// A member as `/v1/groups/{group}/members/` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FasGroupMember {
    pub username: String,
}

#[derive(Debug, Deserialize)]
struct GroupName {
    groupname: String,
}

#[derive(Debug, Deserialize)]
struct Single<T> {
    result: T,
}

/// One page of a paged answer.
#[derive(Debug, Deserialize)]
struct Paged<T> {
    result: Vec<T>,
    /// Absent when the query was not paged (everything came at once).
    page: Option<PageInfo>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
struct PageInfo {
    page_number: u32,
    total_pages: u32,
}

/// A FASJSON client.
#[derive(Debug, Clone)]
pub struct FasJson {
    client: JsonClient,
    page_size: u32,
    concurrency: usize,
}

impl FasJson {
    pub fn new(settings: &SourceSettings) -> Self {
        Self {
            client: JsonClient::new(
                SERVICE,
                &settings.fasjson_url,
                settings.timeout,
                settings.kerberos.as_ref(),
            ),
            page_size: settings.page_size,
            concurrency: settings.concurrency,
        }
    }

    /// One user; None when FASJSON does not know them (deleted, never existed).
    pub async fn user(&self, name: &str) -> Result<Option<FasUser>, SourceError> {
        match self
            .client
            .get::<Single<FasUser>>(&format!("/v1/users/{name}/"), &[])
            .await
        {
            Ok(one) => Ok(Some(one.result)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every user, page by page (`on_page` is told how many came so far).
    pub async fn all_users(
        &self,
        mut on_page: impl FnMut(usize),
    ) -> Result<Vec<FasUser>, SourceError> {
        let mut seen = 0;
        self.paged("/v1/users/", &[], |n| {
            seen += n;
            on_page(seen)
        })
        .await
    }

    /// Every user as the directory keeps them.
    pub async fn directory(&self, on_page: impl FnMut(usize)) -> Result<Directory, SourceError> {
        let mut directory = Directory::new();
        for user in self.all_users(on_page).await? {
            let account = user.account();
            directory.insert(user.username, account);
        }
        Ok(directory)
    }

    /// Every group's name.
    pub async fn group_names(&self) -> Result<Vec<String>, SourceError> {
        let groups: Vec<GroupName> = self.paged("/v1/groups/", &[], |_| {}).await?;
        Ok(groups.into_iter().map(|g| g.groupname).collect())
    }

    /// A group's members (sorted); None when the group does not exist.
    pub async fn group_members(&self, group: &str) -> Result<Option<Vec<String>>, SourceError> {
        let path = format!("/v1/groups/{group}/members/");
        match self.paged::<FasGroupMember>(&path, &[], |_| {}).await {
            Ok(members) => {
                let mut names: Vec<String> = members.into_iter().map(|m| m.username).collect();
                names.sort();
                names.dedup();
                Ok(Some(names))
            }
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every group with its members, `concurrency` groups at a time. A group deleted between
    /// the listing and its members is left out.
    pub async fn all_groups(&self) -> Result<Vec<(String, Vec<String>)>, SourceError> {
        let names = self.group_names().await?;
        let fetched: Vec<Option<(String, Vec<String>)>> = stream::iter(names)
            .map(|name| async move {
                let members = self.group_members(&name).await?;
                Ok::<_, SourceError>(members.map(|m| (name, m)))
            })
            .buffer_unordered(self.concurrency)
            .try_collect()
            .await?;
        let mut groups: Vec<(String, Vec<String>)> = fetched.into_iter().flatten().collect();
        groups.sort();
        Ok(groups)
    }

    /// The users with this e-mail address (`/v1/search/users/?email=`).
    pub async fn search_by_email(&self, email: &str) -> Result<Vec<FasUser>, SourceError> {
        self.paged("/v1/search/users/", &[("email", email.to_string())], |_| {})
            .await
    }

    /// The users with this chat nick (`/v1/search/users/?ircnick=`).
    pub async fn search_by_ircnick(&self, nick: &str) -> Result<Vec<FasUser>, SourceError> {
        self.paged(
            "/v1/search/users/",
            &[("ircnick", nick.to_string())],
            |_| {},
        )
        .await
    }

    /// Every item of a paged list: asks page 1, then the others `total_pages` announces.
    async fn paged<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        mut on_page: impl FnMut(usize),
    ) -> Result<Vec<T>, SourceError> {
        let mut out = Vec::new();
        let mut page_number = 1u32;
        loop {
            let mut q: Vec<(&str, String)> = query.to_vec();
            q.push(("page_size", self.page_size.to_string()));
            q.push(("page_number", page_number.to_string()));
            let page: Paged<T> = self.client.get(path, &q).await?;
            on_page(page.result.len());
            out.extend(page.result);
            match page.page {
                Some(info) if info.page_number < info.total_pages => {
                    if info.page_number != page_number {
                        return Err(SourceError::Malformed {
                            service: SERVICE,
                            url: format!("{}{path}", self.client.base),
                            detail: format!(
                                "asked for page {page_number}, got page {}",
                                info.page_number
                            ),
                        });
                    }
                    page_number += 1;
                }
                _ => return Ok(out),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_read_as_fasjson_writes_them() {
        // The shape of FASJSON's `GET /v1/users/{name}/` (fasjson's own test data).
        let json = r#"{"result": {"username": "admin", "surname": "Administrator",
            "givenname": "", "human_name": "Administrator", "emails": ["admin@example.test"],
            "ircnicks": null, "locale": "en-US", "timezone": null, "gpgkeyids": null,
            "certificates": null, "creation": "2020-04-23T10:16:35", "locked": false,
            "uri": "http://fasjson.example.test/fasjson/v1/users/admin/"}}"#;
        let user: Single<FasUser> = serde_json::from_str(json).unwrap();
        assert_eq!(user.result.username, "admin");
        assert_eq!(user.result.emails, ["admin@example.test"]);
        assert!(user.result.ircnicks.is_empty());
        let paged = r#"{"result": [{"username": "a"}], "page": {"total_results": 3,
            "page_size": 1, "page_number": 1, "total_pages": 3,
            "next_page": "http://x/v1/users/?page_size=1&page_number=2"}}"#;
        let page: Paged<FasGroupMember> = serde_json::from_str(paged).unwrap();
        assert_eq!(page.page.unwrap().total_pages, 3);
    }
}
