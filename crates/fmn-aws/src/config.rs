//! AWS clients built from the environment. The SDK honours `AWS_ENDPOINT_URL` and the
//! per-service `AWS_ENDPOINT_URL_<SERVICE>` variables, so the same code talks to AWS, to
//! LocalStack, to DynamoDB Local or to moto without a line of difference.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Mutex;

use crate::names::{QueueName, ResourceNames, TableName};
use crate::sqs::SqsError;

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
}

impl AwsClients {
    /// Clients from the standard AWS environment; names from `FMN_RESOURCE_PREFIX`.
    pub async fn from_env() -> Self {
        let config = aws_config::load_from_env().await;
        Self::new(&config, ResourceNames::from_env())
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
        }
    }

    /// The URL of one of our queues, asked of SQS once and then remembered.
    pub async fn queue_url(&self, queue: QueueName) -> Result<String, SqsError> {
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
        self.names.table(table)
    }
}
