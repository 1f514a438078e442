//! AWS clients built from the environment. The SDK honours `AWS_ENDPOINT_URL` and the
//! per-service `AWS_ENDPOINT_URL_<SERVICE>` variables, so the same code talks to AWS, to
//! LocalStack, to DynamoDB Local or to moto without a line of difference.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Mutex;

use crate::names::{Access, FunctionName, QueueName, ResourceNames, TableName};
use crate::sqs::SqsError;
use crate::vars::{ConfigError, Vars};

/// Where the local emulators listen (see `localstack/`).
pub const LOCAL_ENDPOINT: &str = "http://127.0.0.1:4566";
pub const LOCAL_DYNAMODB_ENDPOINT: &str = "http://127.0.0.1:8000";
pub const LOCAL_SESV2_ENDPOINT: &str = "http://127.0.0.1:5055";

/// Sets the variables a local run needs where they are not set already: the emulators'
/// endpoints, a region and dummy credentials. Call at the start of `main`, before any thread
/// that could read the environment is started; never called by a Lambda.
pub fn apply_local_defaults() {
    let defaults = [
        ("AWS_ENDPOINT_URL", LOCAL_ENDPOINT),
        ("AWS_ENDPOINT_URL_DYNAMODB", LOCAL_DYNAMODB_ENDPOINT),
        ("AWS_ENDPOINT_URL_SESV2", LOCAL_SESV2_ENDPOINT),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
    ];
    for (k, v) in defaults {
        if std::env::var_os(k).is_none() {
            std::env::set_var(k, v);
        }
    }
}

/// The clients every function shares, and the names of the resources they use.
#[derive(Clone, Debug)]
pub struct AwsClients {
    pub sqs: aws_sdk_sqs::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sesv2: aws_sdk_sesv2::Client,
    pub eventbridge: aws_sdk_eventbridge::Client,
    pub names: ResourceNames,
    queue_urls: Arc<Mutex<HashMap<QueueName, String>>>,
    /// The component these clients serve and its access list: only those resources may be
    /// named (see `scoped`).
    scope: Option<(&'static str, &'static [Access])>,
    /// The stage whose requests these clients count, once labelled (see `counted_as`).
    counted: Option<Arc<str>>,
}

impl AwsClients {
    /// Clients from the standard AWS environment; names from `FMN_RESOURCE_PREFIX` and the
    /// template's variables (queue URLs, table names), where set.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = aws_config::load_from_env().await;
        let vars = Vars::from_env();
        crate::request_count::enable_from(&vars)?;
        let clients = Self::new(&config, ResourceNames::from_vars(&vars));
        {
            let mut urls = clients.queue_urls.lock().await;
            for queue in QueueName::ALL {
                let name = queue.url_variable();
                if let Some(url) = vars.text(name) {
                    if !(url.starts_with("https://") || url.starts_with("http://")) {
                        return Err(ConfigError {
                            name: name.into(),
                            value: url,
                            expected: "an SQS queue URL (https://...)",
                        });
                    }
                    urls.insert(queue, url);
                }
            }
        }
        Ok(clients)
    }

    /// Clients from the standard AWS environment with an explicit name prefix (tests).
    pub async fn with_names(names: ResourceNames) -> Self {
        let config = aws_config::load_from_env().await;
        Self::new(&config, names)
    }

    pub fn new(config: &aws_config::SdkConfig, names: ResourceNames) -> Self {
        Self {
            sqs: aws_sdk_sqs::Client::new(config),
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            sesv2: aws_sdk_sesv2::Client::new(config),
            eventbridge: aws_sdk_eventbridge::Client::new(config),
            names,
            queue_urls: Arc::default(),
            scope: None,
            counted: None,
        }
    }

    /// These clients with their requests counted under `stage` when counting is on
    /// ([`crate::request_count`]). The first label sticks: a handler scoping clients its
    /// caller already labelled does not count them twice.
    pub fn counted_as(&self, stage: &str) -> Self {
        if !crate::request_count::is_enabled() || self.counted.is_some() {
            return self.clone();
        }
        let counter = || crate::request_count::RequestCounter::new(stage);
        Self {
            sqs: aws_sdk_sqs::Client::from_conf(
                self.sqs
                    .config()
                    .to_builder()
                    .interceptor(counter())
                    .build(),
            ),
            dynamodb: aws_sdk_dynamodb::Client::from_conf(
                self.dynamodb
                    .config()
                    .to_builder()
                    .interceptor(counter())
                    .build(),
            ),
            sesv2: aws_sdk_sesv2::Client::from_conf(
                self.sesv2
                    .config()
                    .to_builder()
                    .interceptor(counter())
                    .build(),
            ),
            counted: Some(Arc::from(stage)),
            ..self.clone()
        }
    }

    /// These clients for `function`: naming a table or queue outside its
    /// [`FunctionName::access`] list is a bug that IAM would refuse on AWS, so it fails at
    /// once in a debug build (every test) and is logged in a release build.
    pub fn scoped(&self, function: FunctionName) -> Self {
        self.scoped_to(function.binary(), function.access())
    }

    /// [`AwsClients::scoped`] for a component that is not a Lambda (the ingest bridge).
    pub fn scoped_to(&self, component: &'static str, access: &'static [Access]) -> Self {
        Self {
            scope: Some((component, access)),
            ..self.counted_as(component)
        }
    }

    fn check_scope(&self, what: &str, allowed: impl Fn(&Access) -> bool) {
        if let Some((component, access)) = self.scope {
            if !access.iter().any(allowed) {
                tracing::error!(
                    component,
                    resource = what,
                    "a resource outside the component's access list was used"
                );
                debug_assert!(
                    false,
                    "{component} uses {what}, which its access list (and so its IAM policy) does not list"
                );
            }
        }
    }

    /// The URL of one of our queues: from the template's variable, or asked of SQS once and
    /// then remembered.
    pub async fn queue_url(&self, queue: QueueName) -> Result<String, SqsError> {
        self.check_scope(queue.logical_id(), |a| a.queue() == Some(queue));
        let mut cache = self.queue_urls.lock().await;
        if let Some(url) = cache.get(&queue) {
            return Ok(url.clone());
        }
        let name = self.names.queue(queue);
        let out = self
            .sqs
            .get_queue_url()
            .queue_name(&name)
            .send()
            .await
            .map_err(|e| SqsError::call("GetQueueUrl", &name, e))?;
        let url = out
            .queue_url
            .ok_or_else(|| SqsError::Missing(format!("queue `{name}` has no URL")))?;
        cache.insert(queue, url.clone());
        Ok(url)
    }

    pub fn table(&self, table: TableName) -> String {
        self.check_scope(table.logical_id(), |a| a.table() == Some(table));
        self.names.table(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clients() -> AwsClients {
        let config = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        AwsClients::new(&config, ResourceNames::new("t"))
    }

    #[test]
    fn a_scoped_function_names_its_own_tables() {
        let c = clients().scoped(FunctionName::DeliverIrc);
        assert_eq!(c.table(TableName::DeliveryRecords), "t-delivery-records");
    }

    #[test]
    #[should_panic(expected = "does not list")]
    fn a_table_outside_the_access_list_is_a_bug() {
        clients()
            .scoped(FunctionName::DeliverIrc)
            .table(TableName::Preferences);
    }

    #[tokio::test]
    #[should_panic(expected = "does not list")]
    async fn a_queue_outside_the_access_list_is_a_bug() {
        let _ = clients()
            .scoped(FunctionName::Digest)
            .queue_url(QueueName::Email)
            .await;
    }

    #[tokio::test]
    async fn queue_urls_given_by_the_template_are_not_looked_up() {
        let c = clients();
        c.queue_urls
            .lock()
            .await
            .insert(QueueName::Email, "https://sqs.example/1/t-email".into());
        // No endpoint answers here: a lookup would fail.
        assert_eq!(
            c.scoped(FunctionName::DeliverEmail)
                .queue_url(QueueName::Email)
                .await
                .unwrap(),
            "https://sqs.example/1/t-email"
        );
    }
}

/// What the match function drops as noise before storing (`fmn_core::noise`):
/// `FMN_DROP_NOISE` (default true; false keeps everything), `FMN_KEEP_ENVIRONMENTS` (default
/// `prod`; comma-separated among `prod`, `stg`, `dev`), `FMN_JUNK_TOPICS` (topic suffixes,
/// comma-separated; default the old FMN's list; `none` for none), `FMN_IGNORED_COPR_OWNERS`
/// (default `@rubygems`; `none` for none).
pub fn noise_policy_from(vars: &Vars) -> Result<fmn_core::noise::NoisePolicy, ConfigError> {
    use fmn_core::message::Environment;
    let mut policy = fmn_core::noise::NoisePolicy {
        enabled: vars.flag("FMN_DROP_NOISE", true)?,
        ..Default::default()
    };
    let list = |name: &str| -> Option<Vec<String>> {
        let text = vars.text(name)?;
        if text.eq_ignore_ascii_case("none") {
            return Some(Vec::new());
        }
        Some(
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
        )
    };
    if let Some(envs) = list("FMN_KEEP_ENVIRONMENTS") {
        policy.environments = envs
            .iter()
            .map(|e| {
                Environment::from_label(e).ok_or_else(|| ConfigError {
                    name: "FMN_KEEP_ENVIRONMENTS".into(),
                    value: e.clone(),
                    expected: "a list of environments among prod, stg and dev",
                })
            })
            .collect::<Result<_, _>>()?;
    }
    if let Some(suffixes) = list("FMN_JUNK_TOPICS") {
        policy.junk_suffixes = suffixes;
    }
    if let Some(owners) = list("FMN_IGNORED_COPR_OWNERS") {
        policy.ignored_copr_owners = owners;
    }
    Ok(policy)
}

/// `FMN_EMAIL_BURST`: from how many immediate mails for one address in one match batch they go
/// as one mail (`fmn_core::jobs::email_queue_bodies`; default
/// [`fmn_core::jobs::DEFAULT_EMAIL_BURST`]; `0`: never).
pub fn email_burst_from(vars: &Vars) -> Result<usize, ConfigError> {
    vars.parsed(
        "FMN_EMAIL_BURST",
        fmn_core::jobs::DEFAULT_EMAIL_BURST,
        "a whole number of mails (0: never bundle)",
    )
}

#[cfg(test)]
mod noise_settings_tests {
    use super::*;

    #[test]
    fn noise_settings_default_to_old_fmn_and_refuse_bad_values() {
        let none = Vars::from_lookup(|_| None);
        assert_eq!(
            noise_policy_from(&none).unwrap(),
            fmn_core::noise::NoisePolicy::default()
        );
        let set = |pairs: &'static [(&'static str, &'static str)]| {
            Vars::from_lookup(move |k| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            })
        };
        let p = noise_policy_from(&set(&[
            ("FMN_KEEP_ENVIRONMENTS", "prod, stg"),
            ("FMN_JUNK_TOPICS", "none"),
            ("FMN_IGNORED_COPR_OWNERS", "@a,@b"),
        ]))
        .unwrap();
        assert!(p.enabled);
        assert_eq!(p.environments.len(), 2);
        assert!(p.junk_suffixes.is_empty());
        assert_eq!(p.ignored_copr_owners, ["@a", "@b"]);
        assert!(
            !noise_policy_from(&set(&[("FMN_DROP_NOISE", "no")]))
                .unwrap()
                .enabled
        );
        assert_eq!(email_burst_from(&none).unwrap(), 3);
        assert_eq!(
            email_burst_from(&set(&[("FMN_EMAIL_BURST", "0")])).unwrap(),
            0
        );
        let err = email_burst_from(&set(&[("FMN_EMAIL_BURST", "-1")])).unwrap_err();
        assert!(err.to_string().contains("FMN_EMAIL_BURST"), "{err}");
        let err = noise_policy_from(&set(&[("FMN_KEEP_ENVIRONMENTS", "prod,qa")])).unwrap_err();
        assert!(err.to_string().contains("FMN_KEEP_ENVIRONMENTS"), "{err}");
        assert!(noise_policy_from(&set(&[("FMN_DROP_NOISE", "maybe")])).is_err());
    }
}
