//! Reads `infra/template.yaml` (an AWS SAM template) into typed resource descriptions, so the
//! local set-up and the local runner are created from the same file that deploys to AWS.
//!
//! Only the intrinsic functions the template uses are understood: `!Ref` of a parameter,
//! `!Sub` with `${Parameter}` references, and `!GetAtt Resource.Attribute` where a resource is
//! named (a dead-letter queue, a policy's queue). Anything else is an error, not a guess.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde_yaml::value::TaggedValue;
use serde_yaml::{Mapping, Value};

/// The template compiled into every binary, so nothing reads the repository at run time.
pub const TEMPLATE_YAML: &str = include_str!("../../../infra/template.yaml");

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("the template is not valid YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error("resource {resource}: {reason}")]
    Resource { resource: String, reason: String },
    #[error("unknown parameter `{0}`")]
    UnknownParameter(String),
    #[error("schedule expression `{0}` is not understood (expected `rate(N unit)`)")]
    Schedule(String),
}

fn resource_err(resource: &str, reason: impl Into<String>) -> TemplateError {
    TemplateError::Resource {
        resource: resource.to_string(),
        reason: reason.into(),
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueSpec {
    pub logical_id: String,
    pub name: String,
    pub visibility_timeout_secs: Option<u32>,
    pub retention_secs: Option<u32>,
    pub redrive: Option<Redrive>,
    /// `FifoQueue: true` (set at creation, never changed).
    pub fifo: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redrive {
    /// Logical id of the dead-letter queue.
    pub dead_letter_queue: String,
    pub max_receive_count: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyType {
    Hash,
    Range,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableSpec {
    pub logical_id: String,
    pub name: String,
    /// (attribute, DynamoDB scalar type `S`/`N`/`B`)
    pub attributes: Vec<(String, String)>,
    pub key_schema: Vec<(String, KeyType)>,
    pub ttl_attribute: Option<String>,
    /// Global secondary indexes (all projecting every attribute).
    pub indexes: Vec<IndexSpec>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexSpec {
    pub name: String,
    pub key_schema: Vec<(String, KeyType)>,
    /// `ProjectionType`.
    pub projection: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqsEventSpec {
    /// Logical id of the queue.
    pub queue: String,
    pub batch_size: u32,
    pub batching_window_secs: u32,
    pub report_batch_item_failures: bool,
    /// `ScalingConfig.MaximumConcurrency`: instances the event source invokes at most.
    pub maximum_concurrency: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleSpec {
    pub name: String,
    pub expression: String,
    pub enabled: bool,
}

impl ScheduleSpec {
    /// The period of a `rate(...)` expression.
    pub fn period(&self) -> Result<Duration, TemplateError> {
        parse_rate(&self.expression)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionSpec {
    pub logical_id: String,
    pub name: String,
    pub binary: String,
    pub timeout_secs: u32,
    /// `MemorySize` (MB; Lambda's default 128): what a GB-second of it costs.
    pub memory_mb: u32,
    pub reserved_concurrency: Option<u32>,
    pub sqs_events: Vec<SqsEventSpec>,
    pub schedules: Vec<ScheduleSpec>,
    /// Variables with a value known before deployment (scalars, parameters).
    pub environment: BTreeMap<String, String>,
    /// Variables set to a resource of the stack (`!Ref Queue` is its URL, `!Ref Table` its
    /// name): variable → logical id.
    pub resource_variables: BTreeMap<String, String>,
    /// What its IAM policies grant, read back as the code's access list.
    pub grants: Vec<crate::names::Access>,
}

/// Every resource of the template, parameters resolved.
#[derive(Clone, Debug, Default)]
pub struct Template {
    pub parameters: BTreeMap<String, String>,
    pub queues: Vec<QueueSpec>,
    pub tables: Vec<TableSpec>,
    pub functions: Vec<FunctionSpec>,
    /// SES configuration sets (AWS only): logical id → name.
    pub configuration_sets: BTreeMap<String, String>,
}

impl Template {
    /// The compiled-in template with its parameter defaults, `NamePrefix` set to `prefix`.
    pub fn bundled(prefix: &str) -> Result<Template, TemplateError> {
        let overrides = HashMap::from([("NamePrefix".to_string(), prefix.to_string())]);
        Template::parse(TEMPLATE_YAML, &overrides)
    }

    /// Parses a template; `overrides` replace parameter defaults.
    pub fn parse(
        yaml: &str,
        overrides: &HashMap<String, String>,
    ) -> Result<Template, TemplateError> {
        let doc: Value = serde_yaml::from_str(yaml)?;
        let mut parameters = BTreeMap::new();
        if let Some(params) = doc.get("Parameters").and_then(Value::as_mapping) {
            for (name, spec) in params {
                let name = scalar(name).unwrap_or_default();
                let default = spec.get("Default").and_then(scalar).unwrap_or_default();
                parameters.insert(name, default);
            }
        }
        for (k, v) in overrides {
            if !parameters.contains_key(k) {
                return Err(TemplateError::UnknownParameter(k.clone()));
            }
            parameters.insert(k.clone(), v.clone());
        }
        let globals = doc
            .get("Globals")
            .and_then(|g| g.get("Function"))
            .cloned()
            .unwrap_or(Value::Null);
        let resolver = Resolver {
            parameters: &parameters,
        };

        let mut template = Template {
            parameters: parameters.clone(),
            ..Template::default()
        };
        let resources = doc
            .get("Resources")
            .and_then(Value::as_mapping)
            .ok_or_else(|| resource_err("Resources", "missing"))?;
        for (id, resource) in resources {
            let id = scalar(id).unwrap_or_default();
            let kind = resource.get("Type").and_then(scalar).unwrap_or_default();
            let props = resource.get("Properties").cloned().unwrap_or(Value::Null);
            match kind.as_str() {
                "AWS::SQS::Queue" => template.queues.push(resolver.queue(&id, &props)?),
                "AWS::DynamoDB::Table" => template.tables.push(resolver.table(&id, &props)?),
                "AWS::Serverless::Function" => template
                    .functions
                    .push(resolver.function(&id, resource, &props, &globals)?),
                "AWS::SES::ConfigurationSet" => {
                    let name = props
                        .get("Name")
                        .map(|v| resolver.string(&id, v))
                        .transpose()?
                        .ok_or_else(|| resource_err(&id, "Name is required"))?;
                    template.configuration_sets.insert(id.clone(), name);
                }
                // Deployed on AWS only: nothing to create or run locally.
                "AWS::CloudWatch::Alarm"
                | "AWS::SNS::Topic"
                | "AWS::SNS::Subscription"
                | "AWS::SQS::QueuePolicy"
                | "AWS::SES::ConfigurationSetEventDestination"
                | "AWS::IAM::ManagedPolicy" => {}
                other => return Err(resource_err(&id, format!("unsupported type `{other}`"))),
            }
        }
        Ok(template)
    }

    pub fn queue(&self, logical_id: &str) -> Option<&QueueSpec> {
        self.queues.iter().find(|q| q.logical_id == logical_id)
    }

    pub fn table(&self, logical_id: &str) -> Option<&TableSpec> {
        self.tables.iter().find(|t| t.logical_id == logical_id)
    }

    pub fn function(&self, logical_id: &str) -> Option<&FunctionSpec> {
        self.functions.iter().find(|f| f.logical_id == logical_id)
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

struct Resolver<'a> {
    parameters: &'a BTreeMap<String, String>,
}

impl Resolver<'_> {
    /// Resolves a value to a string: a scalar, `!Ref Parameter` or `!Sub "...${Parameter}..."`.
    fn string(&self, resource: &str, v: &Value) -> Result<String, TemplateError> {
        if let Some(s) = scalar(v) {
            return Ok(s);
        }
        match v {
            Value::Tagged(tagged) => self.tagged(resource, tagged),
            other => Err(resource_err(
                resource,
                format!("expected a string, got {other:?}"),
            )),
        }
    }

    fn tagged(&self, resource: &str, tagged: &TaggedValue) -> Result<String, TemplateError> {
        let arg = scalar(&tagged.value)
            .ok_or_else(|| resource_err(resource, format!("{} takes a string", tagged.tag)))?;
        if tagged.tag == "Ref" {
            return self
                .parameters
                .get(&arg)
                .cloned()
                .ok_or_else(|| resource_err(resource, format!("!Ref {arg}: not a parameter")));
        }
        if tagged.tag == "Sub" {
            return self.substitute(resource, &arg);
        }
        Err(resource_err(
            resource,
            format!("{} is not supported here", tagged.tag),
        ))
    }

    fn substitute(&self, resource: &str, text: &str) -> Result<String, TemplateError> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..]
                .find('}')
                .ok_or_else(|| resource_err(resource, format!("unclosed ${{ in `{text}`")))?;
            let name = &rest[start + 2..start + end];
            let value = self.parameters.get(name).ok_or_else(|| {
                resource_err(resource, format!("!Sub ${{{name}}}: not a parameter"))
            })?;
            out.push_str(value);
            rest = &rest[start + end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn number(&self, resource: &str, v: &Value) -> Result<u32, TemplateError> {
        let s = self.string(resource, v)?;
        s.parse()
            .map_err(|_| resource_err(resource, format!("`{s}` is not a whole number")))
    }

    fn opt_number(&self, resource: &str, v: Option<&Value>) -> Result<Option<u32>, TemplateError> {
        v.map(|v| self.number(resource, v)).transpose()
    }

    /// `!GetAtt Resource.Attribute` → the resource's logical id.
    fn get_att_resource(&self, resource: &str, v: &Value) -> Result<String, TemplateError> {
        match v {
            Value::Tagged(t) if t.tag == "GetAtt" => {
                let arg = scalar(&t.value).unwrap_or_default();
                Ok(arg.split('.').next().unwrap_or_default().to_string())
            }
            other => Err(resource_err(
                resource,
                format!("expected !GetAtt, got {other:?}"),
            )),
        }
    }

    fn queue(&self, id: &str, props: &Value) -> Result<QueueSpec, TemplateError> {
        let name = self.string(
            id,
            props.get("QueueName").ok_or_else(|| {
                resource_err(id, "QueueName is required (the code finds queues by name)")
            })?,
        )?;
        let redrive = match props.get("RedrivePolicy") {
            None => None,
            Some(policy) => Some(Redrive {
                dead_letter_queue: self.get_att_resource(
                    id,
                    policy.get("deadLetterTargetArn").ok_or_else(|| {
                        resource_err(id, "RedrivePolicy without deadLetterTargetArn")
                    })?,
                )?,
                max_receive_count: self.number(
                    id,
                    policy
                        .get("maxReceiveCount")
                        .ok_or_else(|| resource_err(id, "RedrivePolicy without maxReceiveCount"))?,
                )?,
            }),
        };
        Ok(QueueSpec {
            logical_id: id.to_string(),
            name,
            visibility_timeout_secs: self.opt_number(id, props.get("VisibilityTimeout"))?,
            retention_secs: self.opt_number(id, props.get("MessageRetentionPeriod"))?,
            redrive,
            fifo: props
                .get("FifoQueue")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }

    fn table(&self, id: &str, props: &Value) -> Result<TableSpec, TemplateError> {
        let name = self.string(
            id,
            props
                .get("TableName")
                .ok_or_else(|| resource_err(id, "TableName is required"))?,
        )?;
        let list = |key: &str| -> Vec<Value> {
            props
                .get(key)
                .and_then(Value::as_sequence)
                .cloned()
                .unwrap_or_default()
        };
        let mut attributes = Vec::new();
        for a in list("AttributeDefinitions") {
            let field = |k: &str| a.get(k).map(|v| self.string(id, v)).transpose();
            match (field("AttributeName")?, field("AttributeType")?) {
                (Some(n), Some(t)) => attributes.push((n, t)),
                _ => {
                    return Err(resource_err(
                        id,
                        "an attribute definition needs a name and a type",
                    ))
                }
            }
        }
        let key_schema_of = |keys: Vec<Value>| -> Result<Vec<(String, KeyType)>, TemplateError> {
            let mut key_schema = Vec::new();
            for k in keys {
                let field = |key: &str| k.get(key).map(|v| self.string(id, v)).transpose();
                let key_type = match field("KeyType")?.as_deref() {
                    Some("HASH") => KeyType::Hash,
                    Some("RANGE") => KeyType::Range,
                    other => return Err(resource_err(id, format!("bad KeyType {other:?}"))),
                };
                let name = field("AttributeName")?
                    .ok_or_else(|| resource_err(id, "key without a name"))?;
                key_schema.push((name, key_type));
            }
            Ok(key_schema)
        };
        let key_schema = key_schema_of(list("KeySchema"))?;
        let mut indexes = Vec::new();
        for index in list("GlobalSecondaryIndexes") {
            let name = index
                .get("IndexName")
                .map(|v| self.string(id, v))
                .transpose()?
                .ok_or_else(|| resource_err(id, "an index needs an IndexName"))?;
            let keys = index
                .get("KeySchema")
                .and_then(Value::as_sequence)
                .cloned()
                .unwrap_or_default();
            let projection = index
                .get("Projection")
                .and_then(|p| p.get("ProjectionType"))
                .map(|v| self.string(id, v))
                .transpose()?
                .unwrap_or_else(|| "KEYS_ONLY".to_string());
            indexes.push(IndexSpec {
                name,
                key_schema: key_schema_of(keys)?,
                projection,
            });
        }
        let ttl_attribute = match props.get("TimeToLiveSpecification") {
            Some(ttl) if ttl.get("Enabled").and_then(Value::as_bool).unwrap_or(false) => ttl
                .get("AttributeName")
                .map(|v| self.string(id, v))
                .transpose()?,
            _ => None,
        };
        Ok(TableSpec {
            logical_id: id.to_string(),
            name,
            attributes,
            key_schema,
            ttl_attribute,
            indexes,
        })
    }

    fn function(
        &self,
        id: &str,
        resource: &Value,
        props: &Value,
        globals: &Value,
    ) -> Result<FunctionSpec, TemplateError> {
        let name = self.string(
            id,
            props
                .get("FunctionName")
                .ok_or_else(|| resource_err(id, "FunctionName is required"))?,
        )?;
        let binary = resource
            .get("Metadata")
            .and_then(|m| m.get("BuildProperties"))
            .and_then(|b| b.get("Binary"))
            .and_then(scalar)
            .ok_or_else(|| resource_err(id, "Metadata.BuildProperties.Binary is required"))?;
        let timeout_secs = self
            .opt_number(id, props.get("Timeout").or_else(|| globals.get("Timeout")))?
            .unwrap_or(3);
        let memory_mb = self
            .opt_number(
                id,
                props
                    .get("MemorySize")
                    .or_else(|| globals.get("MemorySize")),
            )?
            .unwrap_or(128);
        let mut environment = BTreeMap::new();
        let mut resource_variables = BTreeMap::new();
        for source in [globals, props] {
            if let Some(vars) = source
                .get("Environment")
                .and_then(|e| e.get("Variables"))
                .and_then(Value::as_mapping)
            {
                for (k, v) in vars {
                    let k = scalar(k).unwrap_or_default();
                    match self.resource_ref(v) {
                        Some(resource) => {
                            resource_variables.insert(k, resource);
                        }
                        None => {
                            environment.insert(k, self.string(id, v)?);
                        }
                    }
                }
            }
        }
        let grants = self.grants(id, props.get("Policies"))?;
        let mut sqs_events = Vec::new();
        let mut schedules = Vec::new();
        let empty = Mapping::new();
        let events = props
            .get("Events")
            .and_then(Value::as_mapping)
            .unwrap_or(&empty);
        for (event_id, event) in events {
            let event_id = scalar(event_id).unwrap_or_default();
            let where_ = format!("{id}.Events.{event_id}");
            let ep = event.get("Properties").cloned().unwrap_or(Value::Null);
            match event.get("Type").and_then(scalar).as_deref() {
                Some("SQS") => sqs_events.push(SqsEventSpec {
                    queue: self.get_att_resource(
                        &where_,
                        ep.get("Queue")
                            .ok_or_else(|| resource_err(&where_, "Queue is required"))?,
                    )?,
                    batch_size: self.opt_number(&where_, ep.get("BatchSize"))?.unwrap_or(10),
                    batching_window_secs: self
                        .opt_number(&where_, ep.get("MaximumBatchingWindowInSeconds"))?
                        .unwrap_or(0),
                    maximum_concurrency: self.opt_number(
                        &where_,
                        ep.get("ScalingConfig")
                            .and_then(|c| c.get("MaximumConcurrency")),
                    )?,
                    report_batch_item_failures: ep
                        .get("FunctionResponseTypes")
                        .and_then(Value::as_sequence)
                        .is_some_and(|s| {
                            s.iter()
                                .any(|t| scalar(t).as_deref() == Some("ReportBatchItemFailures"))
                        }),
                }),
                Some("Schedule") => {
                    let expression = self.string(
                        &where_,
                        ep.get("Schedule")
                            .ok_or_else(|| resource_err(&where_, "Schedule is required"))?,
                    )?;
                    parse_rate(&expression)?;
                    schedules.push(ScheduleSpec {
                        name: ep
                            .get("Name")
                            .map(|v| self.string(&where_, v))
                            .transpose()?
                            .unwrap_or_else(|| format!("{name}-{event_id}")),
                        expression,
                        enabled: ep.get("Enabled").and_then(Value::as_bool).unwrap_or(true),
                    });
                }
                // HTTP events are served by the local runner's own listener.
                Some("HttpApi") | Some("Api") => {}
                other => {
                    return Err(resource_err(
                        &where_,
                        format!("unsupported event type {other:?}"),
                    ))
                }
            }
        }
        Ok(FunctionSpec {
            logical_id: id.to_string(),
            name,
            binary,
            timeout_secs,
            memory_mb,
            reserved_concurrency: self.opt_number(id, props.get("ReservedConcurrentExecutions"))?,
            sqs_events,
            schedules,
            environment,
            resource_variables,
            grants,
        })
    }

    /// `!Ref X` where X is not a parameter: the logical id of a resource.
    fn resource_ref(&self, v: &Value) -> Option<String> {
        match v {
            Value::Tagged(t) if t.tag == "Ref" => {
                scalar(&t.value).filter(|name| !self.parameters.contains_key(name))
            }
            _ => None,
        }
    }

    /// A function's `Policies`, as [`crate::names::Access`] entries: SAM's SQS and DynamoDB
    /// policy templates, and an inline statement allowing exactly SES's send actions.
    /// Anything else is an error: the list must stay comparable with the code's.
    fn grants(
        &self,
        id: &str,
        policies: Option<&Value>,
    ) -> Result<Vec<crate::names::Access>, TemplateError> {
        use crate::names::{Access, QueueName, TableName};
        let mut grants = Vec::new();
        let empty = Vec::new();
        let list = policies.and_then(Value::as_sequence).unwrap_or(&empty);
        for policy in list {
            let where_ = format!("{id}.Policies");
            let map = policy
                .as_mapping()
                .filter(|m| m.len() == 1)
                .ok_or_else(|| {
                    resource_err(
                        &where_,
                        "each policy is one policy template or one Statement list",
                    )
                })?;
            let (name, args) = map.iter().next().expect("one entry");
            let name = scalar(name).unwrap_or_default();
            let queue = || -> Result<QueueName, TemplateError> {
                let q = self.get_att_resource(
                    &where_,
                    args.get("QueueName").ok_or_else(|| {
                        resource_err(&where_, format!("{name} without QueueName"))
                    })?,
                )?;
                QueueName::from_logical_id(&q)
                    .ok_or_else(|| resource_err(&where_, format!("{q} is not a queue of the code")))
            };
            let table = || -> Result<TableName, TemplateError> {
                let t = args
                    .get("TableName")
                    .and_then(|v| self.resource_ref(v))
                    .ok_or_else(|| {
                        resource_err(&where_, format!("{name} without TableName: !Ref <table>"))
                    })?;
                TableName::from_logical_id(&t)
                    .ok_or_else(|| resource_err(&where_, format!("{t} is not a table of the code")))
            };
            grants.push(match name.as_str() {
                "SQSPollerPolicy" => Access::Poll(queue()?),
                "SQSSendMessagePolicy" => Access::Send(queue()?),
                "DynamoDBReadPolicy" => Access::Read(table()?),
                "DynamoDBCrudPolicy" => Access::ReadWrite(table()?),
                "SSMParameterReadPolicy" => {
                    let name = match args.get("ParameterName") {
                        Some(Value::Tagged(t)) if t.tag == "Ref" => scalar(&t.value),
                        _ => None,
                    }
                    .ok_or_else(|| {
                        resource_err(&where_, "SSMParameterReadPolicy without ParameterName: !Ref <parameter>")
                    })?;
                    let secret = crate::secrets::Secret::from_template_parameter(&name).ok_or_else(|| {
                        resource_err(&where_, format!("{name} names no secret of the code"))
                    })?;
                    Access::ReadSecret(secret)
                }
                "Statement" => {
                    let actions: Vec<String> = args
                        .as_sequence()
                        .into_iter()
                        .flatten()
                        .flat_map(|st| {
                            st.get("Action")
                                .and_then(Value::as_sequence)
                                .cloned()
                                .unwrap_or_default()
                        })
                        .filter_map(|a| scalar(&a))
                        .collect();
                    if actions != ["ses:SendEmail", "ses:SendRawEmail"] {
                        return Err(resource_err(
                            &where_,
                            format!("an inline statement may only allow ses:SendEmail and ses:SendRawEmail, not {actions:?}"),
                        ));
                    }
                    Access::SendMail
                }
                other => {
                    return Err(resource_err(
                        &where_,
                        format!("unsupported policy `{other}`"),
                    ))
                }
            });
        }
        Ok(grants)
    }
}

/// Parses `rate(1 minute)`, `rate(5 minutes)`, `rate(2 hours)`, `rate(1 day)`.
pub fn parse_rate(expression: &str) -> Result<Duration, TemplateError> {
    let bad = || TemplateError::Schedule(expression.to_string());
    let inner = expression
        .trim()
        .strip_prefix("rate(")
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(bad)?;
    let mut parts = inner.split_whitespace();
    let n: u64 = parts.next().and_then(|n| n.parse().ok()).ok_or_else(bad)?;
    let unit = parts.next().ok_or_else(bad)?;
    if parts.next().is_some() || n == 0 {
        return Err(bad());
    }
    let secs = match unit {
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3600,
        "day" | "days" => 86_400,
        _ => return Err(bad()),
    };
    Ok(Duration::from_secs(n * secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::{FunctionName, QueueName, ResourceNames, TableName};
    use std::collections::BTreeSet;

    fn bundled() -> Template {
        Template::bundled("t").expect("the bundled template parses")
    }

    #[test]
    fn template_and_code_name_the_same_queues() {
        let t = bundled();
        let names = ResourceNames::new("t");
        let in_template: BTreeSet<_> = t
            .queues
            .iter()
            .map(|q| (q.logical_id.clone(), q.name.clone()))
            .collect();
        let in_code: BTreeSet<_> = QueueName::ALL
            .iter()
            .map(|q| (q.logical_id().to_string(), names.queue(*q)))
            .collect();
        assert_eq!(in_template, in_code);
        for q in QueueName::ALL {
            let spec = t.queue(q.logical_id()).unwrap();
            assert_eq!(
                spec.redrive.as_ref().map(|r| r.dead_letter_queue.as_str()),
                q.dead_letter().map(|d| d.logical_id()),
                "dead-letter queue of {q:?}"
            );
        }
    }

    #[test]
    fn template_and_code_name_the_same_tables() {
        let t = bundled();
        let names = ResourceNames::new("t");
        let in_template: BTreeSet<_> = t
            .tables
            .iter()
            .map(|x| (x.logical_id.clone(), x.name.clone()))
            .collect();
        let in_code: BTreeSet<_> = TableName::ALL
            .iter()
            .map(|x| (x.logical_id().to_string(), names.table(*x)))
            .collect();
        assert_eq!(in_template, in_code);
    }

    #[test]
    fn template_and_code_declare_the_same_indexes() {
        let t = bundled();
        for table in TableName::ALL {
            let spec = t.table(table.logical_id()).unwrap();
            let in_template: BTreeSet<_> = spec
                .indexes
                .iter()
                .map(|i| (i.name.clone(), i.key_schema.clone(), i.projection.clone()))
                .collect();
            let in_code: BTreeSet<_> = crate::IndexName::ALL
                .iter()
                .filter(|i| i.table() == table)
                .map(|i| {
                    (
                        i.name().to_string(),
                        vec![
                            (i.hash_key().to_string(), KeyType::Hash),
                            (i.range_key().to_string(), KeyType::Range),
                        ],
                        "ALL".to_string(),
                    )
                })
                .collect();
            assert_eq!(in_template, in_code, "indexes of {table:?}");
            for i in &spec.indexes {
                for (key, _) in &i.key_schema {
                    assert!(
                        spec.attributes.iter().any(|(a, t)| a == key && t == "S"),
                        "{key} of {} is declared a string",
                        i.name
                    );
                }
            }
        }
    }

    #[test]
    fn template_and_code_name_the_same_functions_and_sources() {
        let t = bundled();
        let names = ResourceNames::new("t");
        let in_template: BTreeSet<_> = t
            .functions
            .iter()
            .map(|f| (f.logical_id.clone(), f.name.clone(), f.binary.clone()))
            .collect();
        let in_code: BTreeSet<_> = FunctionName::ALL
            .iter()
            .map(|f| {
                (
                    f.logical_id().to_string(),
                    names.function(*f),
                    f.binary().to_string(),
                )
            })
            .collect();
        assert_eq!(in_template, in_code);
        for f in FunctionName::ALL {
            let spec = t.function(f.logical_id()).unwrap();
            let sources: Vec<_> = spec.sqs_events.iter().map(|e| e.queue.as_str()).collect();
            assert_eq!(
                sources,
                f.source_queue()
                    .map(|q| q.logical_id())
                    .into_iter()
                    .collect::<Vec<_>>()
            );
            assert!(spec.sqs_events.iter().all(|e| e.report_batch_item_failures));
        }
        let digest = t.function(FunctionName::Digest.logical_id()).unwrap();
        assert_eq!(digest.schedules.len(), 1);
        assert_eq!(digest.schedules[0].name, names.digest_schedule());
        let sync = t.function(FunctionName::Sync.logical_id()).unwrap();
        assert_eq!(sync.schedules.len(), 1);
        assert_eq!(sync.schedules[0].name, names.sync_schedule());
        assert_eq!(
            digest
                .environment
                .get("FMN_RESOURCE_PREFIX")
                .map(String::as_str),
            Some("t")
        );
    }

    /// One bot at a time, lines in order, and no job dead-lettered untried: the IRC queue
    /// is FIFO (one message group, so Lambda runs one batch of it at a time), not a reserved
    /// concurrency of 1 (under which throttled batches still count as receives).
    /// A failing record is given up by its retry schedule (dead-lettered with the reason)
    /// before SQS's own redrive would move it without one.
    #[test]
    fn the_retry_schedule_gives_up_before_sqs_redrives() {
        let t = bundled();
        for f in t.functions.iter().filter(|f| !f.sqs_events.is_empty()) {
            let schedule: fmn_core::retry_schedule::RetrySchedule = f
                .environment
                .get(crate::batch::RETRY_SCHEDULE_VAR)
                .unwrap_or_else(|| panic!("{}: no FMN_RETRY_SCHEDULE", f.logical_id))
                .parse()
                .unwrap();
            for event in &f.sqs_events {
                let queue = t
                    .queues
                    .iter()
                    .find(|q| q.logical_id == event.queue)
                    .unwrap();
                let redrive = queue.redrive.as_ref().unwrap();
                assert!(
                    schedule.tries() < redrive.max_receive_count,
                    "{}: {} tries, maxReceiveCount {}",
                    f.logical_id,
                    schedule.tries(),
                    redrive.max_receive_count
                );
            }
        }
    }

    /// deliver-email's instances divide the SES rate by the concurrency its event source
    /// allows: the two must be the same number.
    #[test]
    fn deliver_email_divides_the_ses_rate_by_its_real_concurrency() {
        let t = bundled();
        let f = t.function(FunctionName::DeliverEmail.logical_id()).unwrap();
        let concurrency: u32 = f.environment["FMN_EMAIL_CONCURRENCY"].parse().unwrap();
        assert_eq!(f.sqs_events[0].maximum_concurrency, Some(concurrency));
        assert!(f.environment["FMN_SES_SEND_RATE"].parse::<f64>().unwrap() > 0.0);
    }

    #[test]
    fn the_irc_bot_never_runs_twice_at_once() {
        let t = bundled();
        let irc = t.function(FunctionName::DeliverIrc.logical_id()).unwrap();
        assert_eq!(irc.reserved_concurrency, None);
        for q in [QueueName::Irc, QueueName::IrcDeadLetter] {
            let spec = t.queue(q.logical_id()).unwrap();
            assert!(spec.fifo, "{} is FIFO", q.logical_id());
            assert!(spec.name.ends_with(".fifo"));
            assert_eq!(spec.name, ResourceNames::new("t").queue(q));
        }
        let event = &irc.sqs_events[0];
        assert!(event.batch_size <= 10, "FIFO event sources take at most 10");
        assert_eq!(event.batching_window_secs, 0, "no batching window on FIFO");
        for f in FunctionName::ALL {
            let spec = t.function(f.logical_id()).unwrap();
            assert_eq!(spec.reserved_concurrency, None, "{}", f.binary());
        }
    }

    #[test]
    fn rates_parse() {
        assert_eq!(
            parse_rate("rate(1 minute)").unwrap(),
            Duration::from_secs(60)
        );
        assert_eq!(
            parse_rate("rate(5 minutes)").unwrap(),
            Duration::from_secs(300)
        );
        assert_eq!(
            parse_rate("rate(2 hours)").unwrap(),
            Duration::from_secs(7200)
        );
        assert!(parse_rate("rate(0 minutes)").is_err());
        assert!(parse_rate("cron(0 * * * ? *)").is_err());
        assert!(parse_rate("rate(5 fortnights)").is_err());
    }

    #[test]
    fn unknown_parameters_and_intrinsics_are_errors() {
        let overrides = HashMap::from([("Nope".to_string(), "x".to_string())]);
        assert!(matches!(
            Template::parse(TEMPLATE_YAML, &overrides),
            Err(TemplateError::UnknownParameter(_))
        ));
        let yaml = "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: !Join [a, b]\n";
        assert!(Template::parse(yaml, &HashMap::new()).is_err());
    }

    /// Least privilege, both ways: each function's policies grant exactly its access list
    /// (what `AwsClients::scoped` lets its code touch), and it is given the URL or name of
    /// exactly those queues and tables, so it never calls `GetQueueUrl` on AWS.
    #[test]
    fn each_function_is_granted_and_told_exactly_what_its_code_uses() {
        let t = bundled();
        for f in FunctionName::ALL {
            let spec = t.function(f.logical_id()).unwrap();
            let mut granted = spec.grants.clone();
            granted.sort();
            let mut used = f.access().to_vec();
            used.sort();
            assert_eq!(
                granted,
                used,
                "{}: policies vs FunctionName::access",
                f.binary()
            );
            // Queues and tables; other resources (the SES configuration set) may be named too.
            let told: BTreeMap<String, String> = spec
                .resource_variables
                .iter()
                .filter(|(_, id)| {
                    QueueName::from_logical_id(id).is_some()
                        || TableName::from_logical_id(id).is_some()
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let mut expected = BTreeMap::new();
            for a in f.access() {
                if let Some(q) = a.queue() {
                    expected.insert(q.url_variable().to_string(), q.logical_id().to_string());
                }
                if let Some(t) = a.table() {
                    expected.insert(t.name_variable().to_string(), t.logical_id().to_string());
                }
            }
            assert_eq!(told, expected, "{}: resource variables", f.binary());
        }
    }

    #[test]
    fn policies_outside_the_access_vocabulary_are_refused() {
        let yaml = |policy: &str| {
            format!(
                "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Metadata:\n      BuildProperties:\n        Binary: fmn-match\n    Properties:\n      FunctionName: f\n      Policies:\n        - {policy}\n"
            )
        };
        for bad in [
            "AmazonDynamoDBFullAccess",
            "SESCrudPolicy: { IdentityName: x }",
            "Statement: [{ Effect: Allow, Action: ['dynamodb:*'], Resource: '*' }]",
        ] {
            assert!(
                Template::parse(&yaml(bad), &HashMap::new()).is_err(),
                "{bad} accepted"
            );
        }
        let ok = "Statement: [{ Effect: Allow, Action: [ses:SendEmail, ses:SendRawEmail], Resource: x }]";
        let t = Template::parse(&yaml(ok), &HashMap::new()).unwrap();
        assert_eq!(t.functions[0].grants, vec![crate::names::Access::SendMail]);
    }

    /// The bridge's managed policy allows exactly its access list: sending to the ingest
    /// queue, putting stored bodies.
    #[test]
    fn the_bridge_policy_is_its_access_list() {
        use crate::names::{Access, INGEST_BRIDGE_ACCESS};
        let doc: Value = serde_yaml::from_str(TEMPLATE_YAML).unwrap();
        let statements = doc["Resources"]["IngestBridgePolicy"]["Properties"]["PolicyDocument"]
            ["Statement"]
            .as_sequence()
            .expect("IngestBridgePolicy has statements")
            .clone();
        let mut granted = Vec::new();
        for st in statements {
            let resource = match &st["Resource"] {
                Value::Tagged(t) if t.tag == "GetAtt" => scalar(&t.value)
                    .unwrap_or_default()
                    .trim_end_matches(".Arn")
                    .to_string(),
                other => panic!("a bridge statement names one resource by !GetAtt, not {other:?}"),
            };
            let actions: Vec<String> = st["Action"]
                .as_sequence()
                .unwrap()
                .iter()
                .filter_map(scalar)
                .collect();
            granted.push(match actions.as_slice() {
                [a] if a == "sqs:SendMessage" => {
                    Access::Send(QueueName::from_logical_id(&resource).unwrap())
                }
                [a] if a == "dynamodb:PutItem" => {
                    Access::Put(TableName::from_logical_id(&resource).unwrap())
                }
                other => panic!("unexpected bridge actions {other:?}"),
            });
        }
        granted.sort();
        let mut used = INGEST_BRIDGE_ACCESS.to_vec();
        used.sort();
        assert_eq!(granted, used);
    }
}
