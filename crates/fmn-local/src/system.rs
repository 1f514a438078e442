//! The whole system in one process: provision from the template, then run every function.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use fmn_aws::lambda::SqsBatchHandler;
use fmn_aws::provision::{provision, ProvisionOptions, Provisioned};
use fmn_aws::template::Template;
use fmn_aws::{AwsClients, FunctionName, QueueName};
use fmn_ingest_bridge::BridgeConfig;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::esm::{self, MappingConfig};
use crate::stats::{self, FunctionStats};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{service} is not answering at {endpoint}: {detail}\n  start the emulators with `make localstack-up` (or run `make run`, which does it)")]
    Unreachable {
        service: &'static str,
        endpoint: String,
        detail: String,
    },
    #[error(transparent)]
    Template(#[from] fmn_aws::template::TemplateError),
    #[error(transparent)]
    Provision(#[from] fmn_aws::provision::ProvisionError),
    #[error(transparent)]
    Sqs(#[from] fmn_aws::sqs::SqsError),
    #[error("cannot listen on {addr}: {source} (is another process using it? set FMN_WEB_ADDR to choose another address)")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Setting(#[from] fmn_aws::ConfigError),
}

/// How the local system runs; every field has a working default.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// `FMN_WEB_ADDR`, default `127.0.0.1:8080`.
    pub web_addr: SocketAddr,
    /// `FMN_DIGEST_INTERVAL` (seconds); default: the template's digest schedule.
    pub digest_interval: Option<Duration>,
    /// `FMN_PROGRESS_INTERVAL` (seconds), default 10.
    pub progress_interval: Duration,
    pub bridge: BridgeConfig,
    /// The IRC bot's settings (`FMN_IRC_*`); the tests point it at their own server.
    pub irc: fmn_deliver_irc::IrcSettings,
    /// The Matrix bot's settings (`FMN_MATRIX_*`); without an access token Matrix jobs wait in
    /// their queue.
    pub matrix: fmn_deliver_matrix::MatrixSettings,
    /// `FMN_DEMO` (default true): seed demo users when following no bus.
    pub demo: bool,
    /// The mail senders' settings (`FMN_FROM_ADDRESS`, …).
    pub mail: fmn_aws::mail::MailSettings,
    /// The web-api's settings; `FMN_DEV_AUTH` defaults to true (development login) only when
    /// every AWS endpoint is a local emulator ([`endpoints_are_local`]).
    pub web: fmn_web_api::settings::Settings,
    /// `FMN_SOFT_BOUNCE_LIMIT`, `FMN_FAILING_DAYS`: when problems stop a destination.
    pub health: fmn_core::health::HealthPolicy,
    /// `FMN_RETRY_SCHEDULE`: when the queue-fed functions try a failed record again.
    pub retry: Option<fmn_aws::batch::RetrySchedule>,
    /// `FMN_DROP_NOISE`, `FMN_KEEP_ENVIRONMENTS`, `FMN_JUNK_TOPICS`, `FMN_IGNORED_COPR_OWNERS`:
    /// what the match function drops before storing.
    pub noise: fmn_core::noise::NoisePolicy,
    /// `FMN_EMAIL_BURST`: from how many mails for one address in one match batch they go as one.
    pub email_burst: usize,
    /// `FMN_LAMBDA_CONCURRENCY`: run as many batches of a queue at once as Lambda would (the
    /// template's `MaximumConcurrency`, 5 for other standard queues; one sender per
    /// deliver-email instance): the e2e bench's and the kill -9 test's mode. Off by default:
    /// one batch per queue at a time, easier to follow in a log.
    pub lambda_concurrency: bool,
    /// `FMN_QUEUE_VISIBILITY`: replaces the template's visibility timeouts (360 s) when the
    /// runner creates the queues, so a record a crash abandoned comes back in seconds.
    pub queue_visibility: Option<Duration>,
}

impl RunOptions {
    pub fn from_env() -> Result<Self, RunError> {
        let vars = fmn_aws::Vars::from_env();
        let web_addr = vars.parsed(
            "FMN_WEB_ADDR",
            SocketAddr::from(([127, 0, 0, 1], 8080)),
            "an address like 127.0.0.1:8080",
        )?;
        Ok(Self {
            lambda_concurrency: vars.flag("FMN_LAMBDA_CONCURRENCY", false)?,
            queue_visibility: vars.seconds("FMN_QUEUE_VISIBILITY")?,
            web_addr,
            digest_interval: vars.seconds("FMN_DIGEST_INTERVAL")?,
            progress_interval: vars
                .seconds("FMN_PROGRESS_INTERVAL")?
                .unwrap_or(Duration::from_secs(10)),
            bridge: BridgeConfig::from_env().map_err(|e| RunError::Config(e.to_string()))?,
            irc: fmn_deliver_irc::IrcSettings::from_vars(&vars)?,
            matrix: fmn_deliver_matrix::MatrixSettings::from_vars(&vars)?,
            mail: fmn_aws::mail::MailSettings::from_vars(&vars)?,
            demo: vars.flag("FMN_DEMO", true)?,
            retry: fmn_aws::batch::retry_schedule_from(&vars)?,
            noise: fmn_aws::config::noise_policy_from(&vars)?,
            email_burst: fmn_aws::config::email_burst_from(&vars)?,
            health: fmn_aws::health::policy_from(&vars)?,
            web: fmn_web_api::settings::Settings::from_env(endpoints_are_local(|k| {
                std::env::var(k).ok()
            }))
            .map_err(|e| RunError::Config(e.to_string()))?,
        })
    }
}

/// The endpoint variables of the services the local runner uses; a per-service one wins over
/// `AWS_ENDPOINT_URL`, and with neither the SDK talks to AWS itself.
const ENDPOINT_VARS: [&str; 4] = [
    "AWS_ENDPOINT_URL_SQS",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ENDPOINT_URL_SESV2",
    "AWS_ENDPOINT_URL_EVENTBRIDGE",
];

/// Whether every AWS service is reached on this machine (loopback: the emulators). Anything
/// else could be real AWS, where a development login handing out tokens for any user (admins
/// included) must not be the default: there it takes an explicit `FMN_DEV_AUTH=true`.
pub fn endpoints_are_local(lookup: impl Fn(&str) -> Option<String>) -> bool {
    let set = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
    let general = set("AWS_ENDPOINT_URL");
    ENDPOINT_VARS.iter().all(|k| {
        set(k)
            .or_else(|| general.clone())
            .is_some_and(|url| is_loopback_url(&url))
    })
}

fn is_loopback_url(url: &str) -> bool {
    let Some(rest) = url
        .trim()
        .strip_prefix("http://")
        .or_else(|| url.trim().strip_prefix("https://"))
    else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return false;
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Checks that SQS and DynamoDB answer, with an error that says what to do when not.
pub async fn preflight(clients: &AwsClients) -> Result<(), RunError> {
    let timeout = Duration::from_secs(5);
    let endpoint =
        |var: &str| std::env::var(var).unwrap_or_else(|_| "the AWS default endpoint".into());
    let sqs = tokio::time::timeout(timeout, clients.sqs.list_queues().max_results(1).send()).await;
    match sqs {
        Ok(Ok(_)) => {}
        other => {
            return Err(RunError::Unreachable {
                service: "SQS (LocalStack)",
                endpoint: endpoint("AWS_ENDPOINT_URL"),
                detail: match other {
                    Ok(Err(e)) => aws_sdk_sqs::error::DisplayErrorContext(&e).to_string(),
                    _ => "no answer within 5 s".into(),
                },
            })
        }
    }
    let dynamo =
        tokio::time::timeout(timeout, clients.dynamodb.list_tables().limit(1).send()).await;
    match dynamo {
        Ok(Ok(_)) => Ok(()),
        other => Err(RunError::Unreachable {
            service: "DynamoDB (DynamoDB Local)",
            endpoint: std::env::var("AWS_ENDPOINT_URL_DYNAMODB")
                .unwrap_or_else(|_| endpoint("AWS_ENDPOINT_URL")),
            detail: match other {
                Ok(Err(e)) => aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string(),
                _ => "no answer within 5 s".into(),
            },
        }),
    }
}

/// Creates every resource of the bundled template under the clients' name prefix.
pub async fn provision_all(
    clients: &AwsClients,
    options: &ProvisionOptions,
) -> Result<(Template, Provisioned), RunError> {
    let template = Template::bundled(clients.names.prefix())?;
    let provisioned = provision(clients, &template, options).await?;
    tracing::info!(
        queues = provisioned.queue_urls.len(),
        tables = provisioned.tables.len(),
        prefix = clients.names.prefix(),
        "resources created from infra/template.yaml"
    );
    Ok((template, provisioned))
}

/// The mapping the template declares for `function`'s SQS event.
pub fn mapping_config(
    template: &Template,
    provisioned: &Provisioned,
    function: FunctionName,
) -> Result<MappingConfig, RunError> {
    let missing = |what: String| RunError::Config(format!("the template has no {what}"));
    let spec = template
        .function(function.logical_id())
        .ok_or_else(|| missing(format!("function {}", function.logical_id())))?;
    let event = spec
        .sqs_events
        .first()
        .ok_or_else(|| missing(format!("SQS event for {}", function.logical_id())))?;
    Ok(MappingConfig {
        function: function.binary().to_string(),
        queue_url: provisioned
            .queue_urls
            .get(&event.queue)
            .cloned()
            .ok_or_else(|| missing(format!("queue {}", event.queue)))?,
        queue_arn: provisioned
            .queue_arns
            .get(&event.queue)
            .cloned()
            .unwrap_or_default(),
        batch_size: event.batch_size as usize,
        batching_window: Duration::from_secs(event.batching_window_secs.into()),
        function_timeout: Duration::from_secs(spec.timeout_secs.into()),
        report_batch_item_failures: event.report_batch_item_failures,
        concurrency: match event.maximum_concurrency {
            Some(n) => n.max(1) as usize,
            None if is_fifo(template, &event.queue) => 1,
            None => esm::DEFAULT_STANDARD_CONCURRENCY,
        },
    })
}

/// Whether the template's queue `logical_id` is a FIFO queue.
fn is_fifo(template: &Template, logical_id: &str) -> bool {
    template
        .queues
        .iter()
        .any(|q| q.logical_id == logical_id && q.fifo)
}

/// Runs the whole system until `shutdown` is cancelled.
pub async fn run(
    clients: AwsClients,
    options: RunOptions,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    preflight(&clients).await?;
    let provision_options = ProvisionOptions {
        visibility_timeout_secs: options.queue_visibility.map(|d| d.as_secs().max(1) as u32),
    };
    let (template, provisioned) = provision_all(&clients, &provision_options).await?;
    // In AWS an administrator verifies the sender once; locally the emulator needs to be told.
    let from = &options.mail.context.from_address;
    fmn_aws::ses::ensure_email_identity(&clients.sesv2, from)
        .await
        .map_err(|e| RunError::Unreachable {
            service: "SES v2 (moto)",
            endpoint: std::env::var("AWS_ENDPOINT_URL_SESV2").unwrap_or_default(),
            detail: e.to_string(),
        })?;
    let listener = tokio::net::TcpListener::bind(options.web_addr)
        .await
        .map_err(|source| RunError::Listen {
            addr: options.web_addr,
            source,
        })?;

    let mut tasks = JoinSet::new();
    let mut all_stats = Vec::new();
    let mut spawn_mapping = |function: FunctionName,
                             handlers: Vec<Arc<dyn ErasedHandler>>|
     -> Result<(), RunError> {
        let mut config = mapping_config(&template, &provisioned, function)?;
        if function == FunctionName::DeliverEmail {
            // One setting for both, as the template's `EmailConcurrency` parameter: the
            // senders share the SES rate among this many instances.
            config.concurrency = options.mail.email_concurrency as usize;
        }
        if !options.lambda_concurrency {
            config.concurrency = 1;
        }
        let stats = Arc::new(FunctionStats::default());
        all_stats.push((function.binary().to_string(), Arc::clone(&stats)));
        // The mapping's own receives and deletes are billed too: counted apart.
        let mapping_clients = clients.counted_as(&format!("{} event source", function.binary()));
        // Poller i invokes handler i (one instance per batch in flight, as on AWS) or the
        // one handler they share.
        let handlers: Vec<_> = handlers.into_iter().map(|h| Arc::new(Erased(h))).collect();
        for i in 0..config.concurrency {
            tasks.spawn(esm::run(
                mapping_clients.sqs.clone(),
                config.clone(),
                Arc::clone(&handlers[i % handlers.len()]),
                Arc::clone(&stats),
                shutdown.clone(),
            ));
        }
        Ok(())
    };
    spawn_mapping(
        FunctionName::Match,
        vec![Arc::new(
            fmn_match::MatchHandler::new(&clients)
                .await?
                .with_retry_schedule(options.retry.clone())
                .with_noise_policy(options.noise.clone())
                .with_email_burst(options.email_burst),
        )],
    )?;
    // One sender per instance: each paces itself to its share of the SES rate.
    let mut senders: Vec<Arc<dyn ErasedHandler>> = Vec::new();
    for _ in 0..options.mail.email_concurrency.max(1) {
        senders.push(Arc::new(
            fmn_deliver_email::DeliverEmailHandler::with_settings(&clients, options.mail.clone())
                .await?
                .with_retry_schedule(options.retry.clone()),
        ));
    }
    spawn_mapping(FunctionName::DeliverEmail, senders)?;
    spawn_mapping(
        FunctionName::MailEvents,
        vec![Arc::new(
            fmn_mail_events::MailEventsHandler::new(&clients, options.mail.lease, options.health)
                .await?
                .with_retry_schedule(options.retry.clone()),
        )],
    )?;
    spawn_mapping(
        FunctionName::DeliverIrc,
        vec![Arc::new(
            fmn_deliver_irc::DeliverIrcHandler::with_settings(&clients, options.irc.clone())
                .await?
                .with_retry_schedule(options.retry.clone()),
        )],
    )?;
    if options.matrix.access_token.is_some() {
        spawn_mapping(
            FunctionName::DeliverMatrix,
            vec![Arc::new(
                fmn_deliver_matrix::DeliverMatrixHandler::with_settings(
                    &clients,
                    options.matrix.clone(),
                )
                .await
                .map_err(|e| RunError::Config(e.to_string()))?
                .with_retry_schedule(options.retry.clone()),
            )],
        )?;
    } else {
        tracing::warn!(
            "Matrix delivery is off (FMN_MATRIX_ACCESS_TOKEN is not set): Matrix jobs wait in their queue"
        );
    }

    // The digest schedule, as a timer with the template's rate.
    let schedule = template
        .function(FunctionName::Digest.logical_id())
        .and_then(|f| f.schedules.first().cloned())
        .ok_or_else(|| RunError::Config("the template has no digest schedule".into()))?;
    let period = match options.digest_interval {
        Some(p) => p,
        None => schedule.period()?,
    };
    let digest = fmn_digest::DigestHandler::with_settings(&clients, options.mail.clone());
    let stop = shutdown.clone();
    tasks.spawn(async move {
        tracing::info!(schedule = %schedule.name, every = ?period, "digest schedule started");
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = ticker.tick() => {
                    if let Err(e) = digest.run().await {
                        tracing::error!(error = %e, "digest run failed");
                    }
                }
            }
        }
    });

    // The web-api.
    let stop = shutdown.clone();
    let web_addr = options.web_addr;
    let web_state = fmn_web_api::AppState::new(options.web.clone(), clients.clone());
    tasks.spawn(async move {
        let served = axum::serve(listener, fmn_web_api::router(web_state))
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "web-api stopped");
        }
    });

    // The ingest bridge.
    let ingest_url = clients.queue_url(QueueName::Ingest).await?;
    let bridge = options.bridge.clone();
    let stop = shutdown.clone();
    let sqs = clients.sqs.clone();
    if !bridge.has_sources() && options.demo {
        match crate::demo::seed(&clients).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                users = n,
                "demo data: sample users with default filters and the ownership sample (FMN_DEMO=false skips this)"
            ),
            Err(e) => tracing::warn!(error = %e, "could not seed the demo data"),
        }
    }
    if !bridge.has_sources() {
        tasks.spawn(async move {
            let sample = fmn_ingest_bridge::replay::SAMPLE;
            match fmn_ingest_bridge::replay::replay(
                &sqs,
                &ingest_url,
                sample,
                bridge.replay_interval(),
                &stop,
            )
            .await
            {
                Ok(n) => tracing::info!(
                    messages = n,
                    "sample replay finished; set FMN_AMQP_URL or FMN_FEDMSG_ENDPOINTS to follow a live bus"
                ),
                Err(e) => tracing::error!(error = %e, "sample replay failed"),
            }
        });
    } else {
        // Scoped as its own binary scopes them (and so counted as the bridge).
        let clients = clients.scoped_to("fmn-ingest-bridge", fmn_aws::names::INGEST_BRIDGE_ACCESS);
        tasks.spawn(async move {
            if let Err(e) = fmn_ingest_bridge::run(bridge, &clients, stop).await {
                tracing::error!(error = %e, "ingest bridge stopped");
            }
        });
    }

    tasks.spawn(stats::progress(
        all_stats,
        options.progress_interval,
        shutdown.clone(),
    ));
    tracing::info!(
        "ready: web-api on http://{web_addr} (try /healthz), queues and tables under prefix `{}`; Ctrl-C to stop",
        clients.names.prefix()
    );

    shutdown.cancelled().await;
    tracing::info!("shutting down: finishing batches in flight");
    let drained = tokio::time::timeout(Duration::from_secs(30), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("some tasks did not stop within 30 s; their records return to the queues");
    }
    tracing::info!("stopped");
    Ok(())
}

/// Handlers of different types behind one pointer, so the runner can list them.
trait ErasedHandler: Send + Sync + 'static {
    fn handle(
        &self,
        event: aws_lambda_events::sqs::SqsEvent,
    ) -> futures::future::BoxFuture<'_, aws_lambda_events::sqs::SqsBatchResponse>;
}

impl<H: SqsBatchHandler> ErasedHandler for H {
    fn handle(
        &self,
        event: aws_lambda_events::sqs::SqsEvent,
    ) -> futures::future::BoxFuture<'_, aws_lambda_events::sqs::SqsBatchResponse> {
        Box::pin(self.handle_batch(event))
    }
}

struct Erased(Arc<dyn ErasedHandler>);

impl SqsBatchHandler for Erased {
    fn handle_batch(
        &self,
        event: aws_lambda_events::sqs::SqsEvent,
    ) -> impl std::future::Future<Output = aws_lambda_events::sqs::SqsBatchResponse> + Send {
        self.0.handle(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(vars: &[(&str, &str)]) -> bool {
        endpoints_are_local(|k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn dev_login_is_the_default_only_against_local_emulators() {
        let emulators = [
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"),
            ("AWS_ENDPOINT_URL_DYNAMODB", "http://localhost:8000"),
            ("AWS_ENDPOINT_URL_SESV2", "http://[::1]:5055"),
        ];
        assert!(local(&emulators));
        // No endpoint at all: the SDK's default, real AWS.
        assert!(!local(&[]));
        // One service on real AWS is enough to say no.
        let mut mixed = emulators.to_vec();
        mixed[1] = (
            "AWS_ENDPOINT_URL_DYNAMODB",
            "https://dynamodb.us-east-1.amazonaws.com",
        );
        assert!(!local(&mixed));
        assert!(!local(&[(
            "AWS_ENDPOINT_URL",
            "https://127.0.0.1.example.org"
        )]));
        assert!(!local(&[(
            "AWS_ENDPOINT_URL",
            "http://127.0.0.1@evil.example.org"
        )]));
        assert!(local(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")]));
    }
}
