//! The resources made from `infra/template.yaml` work on the local emulators: DynamoDB tables
//! with conditional writes, provisioning twice changes nothing, and the digest schedule fires.

use aws_sdk_dynamodb::types::AttributeValue;
use fmn_aws::provision::{provision, provision_schedules, ProvisionOptions};
use fmn_aws::{QueueName, TableName};
use fmn_integration_tests::TestEnv;

#[tokio::test(flavor = "multi_thread")]
async fn every_table_takes_conditional_writes() {
    let env = TestEnv::new("tables").await;
    for table in TableName::ALL {
        let name = env.clients.table(table);
        let spec = env.template.table(table.logical_id()).unwrap();
        let mut item = std::collections::HashMap::new();
        for (key, _) in &spec.key_schema {
            item.insert(key.clone(), AttributeValue::S(format!("{key}-1")));
        }
        let put = || {
            env.clients
                .dynamodb
                .put_item()
                .table_name(&name)
                .set_item(Some(item.clone()))
                .condition_expression("attribute_not_exists(pk)")
        };
        put()
            .send()
            .await
            .unwrap_or_else(|e| panic!("first put into {name}: {e:?}"));
        let second = put().send().await;
        let err = second.expect_err("the second conditional put must fail");
        assert!(
            format!("{err:?}").contains("ConditionalCheckFailed"),
            "{name}: {err:?}"
        );
        let got = env
            .clients
            .dynamodb
            .get_item()
            .table_name(&name)
            .set_key(Some(item.clone()))
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        assert!(got.item.is_some(), "{name}: item readable");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn provisioning_twice_changes_nothing() {
    let env = TestEnv::new("twice").await;
    let again = provision(
        &env.clients,
        &env.template,
        &ProvisionOptions {
            visibility_timeout_secs: Some(1),
        },
    )
    .await
    .expect("second provisioning succeeds");
    assert_eq!(again.queue_urls, env.provisioned.queue_urls);
    // The redrive policy names the right dead-letter queue and count.
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let attrs = env
        .clients
        .sqs
        .get_queue_attributes()
        .queue_url(env.queue_url(QueueName::Email))
        .attribute_names(A::RedrivePolicy)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    let policy: serde_json::Value = serde_json::from_str(&attrs[&A::RedrivePolicy]).unwrap();
    assert_eq!(
        policy["deadLetterTargetArn"],
        env.provisioned.queue_arns["EmailDeadLetterQueue"]
    );
    let in_template = env
        .template
        .queues
        .iter()
        .find(|q| q.logical_id == "EmailQueue")
        .and_then(|q| q.redrive.as_ref())
        .unwrap()
        .max_receive_count;
    assert_eq!(
        policy["maxReceiveCount"].to_string().trim_matches('"'),
        in_template.to_string()
    );
}

/// EventBridge in LocalStack fires the template's `rate(1 minute)` digest schedule. Locally
/// the target is a queue standing in for the function; the first event comes within ~60 s.
#[tokio::test(flavor = "multi_thread")]
async fn the_digest_schedule_fires() {
    let env = TestEnv::new("schedule").await;
    // Any queue will do as the target; the ingest DLQ is empty and unused here.
    let target = &env.provisioned.queue_arns["IngestDeadLetterQueue"];
    let rules = provision_schedules(&env.clients, &env.template, target)
        .await
        .unwrap();
    assert_eq!(
        rules,
        [
            env.clients.names.digest_schedule(),
            env.clients.names.sync_schedule()
        ]
    );
    let events = env.drain(QueueName::IngestDeadLetter, 1, 150).await;
    for (rule, target) in rules.iter().zip(["DigestFunction", "SyncFunction"]) {
        env.clients
            .eventbridge
            .remove_targets()
            .rule(rule)
            .ids(format!("{target}-target"))
            .send()
            .await
            .ok();
        env.clients
            .eventbridge
            .delete_rule()
            .name(rule)
            .send()
            .await
            .ok();
    }
    assert_eq!(events.len(), 1, "a scheduled event arrived");
    let event: serde_json::Value =
        serde_json::from_str(events[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(event["detail-type"], "Scheduled Event", "{event}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ses_v2_sends_raw_mail_that_the_emulator_records() {
    let env = TestEnv::new("sesv2").await;
    let from = "notifications@fedoraproject.org";
    fmn_aws::ses::ensure_email_identity(&env.clients.sesv2, from)
        .await
        .unwrap();
    // Twice is fine: local start-up calls it every time.
    fmn_aws::ses::ensure_email_identity(&env.clients.sesv2, from)
        .await
        .unwrap();
    let token = env.clients.names.prefix().to_string();
    let raw = format!("From: {from}\r\nTo: someone@example.org\r\nSubject: probe {token}\r\nX-Fedmsg-Id: {token}\r\n\r\nhello\r\n");
    let id = fmn_aws::ses::send_raw(
        &env.clients.sesv2,
        from,
        &["someone@example.org".to_string()],
        raw.clone().into_bytes(),
        // As the functions send on AWS: through a configuration set, tagged with the record.
        &fmn_aws::ses::SendOptions {
            configuration_set: Some(format!("{token}-mail")),
            tags: vec![("fmn-record".into(), "email-0123abcd".into())],
        },
    )
    .await
    .unwrap();
    let sent: Vec<_> = fmn_integration_tests::mail::sent_mail()
        .await
        .into_iter()
        .filter(|m| m.id == id)
        .collect();
    assert_eq!(sent.len(), 1, "the emulator recorded the mail");
    assert_eq!(sent[0].raw, raw);
    assert_eq!(sent[0].source, from);
    assert!(sent[0]
        .destinations
        .iter()
        .any(|d| d == "someone@example.org"));
}

/// Secrets come from Parameter Store (LocalStack's SSM) where a `_PARAMETER` variable names
/// them: decrypted SecureStrings; a missing required one is an error naming its variable; a
/// missing optional one (the IRC password) means none.
#[tokio::test(flavor = "multi_thread")]
async fn secrets_are_read_from_parameter_store() {
    use fmn_aws::secrets::{fetch, Secret};
    let env = TestEnv::new("secrets").await;
    let ssm = aws_sdk_ssm::Client::new(&aws_config::load_from_env().await);
    let name = format!("/{}/unsubscribe-secret", env.clients.names.prefix());
    ssm.put_parameter()
        .name(&name)
        .value("k".repeat(40))
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .expect("PutParameter on LocalStack");
    let missing = format!("/{}/no-such", env.clients.names.prefix());

    let values = fetch(&ssm, |k| {
        (k == Secret::UnsubscribeKey.parameter_variable())
            .then(|| name.clone())
            .or_else(|| (k == Secret::IrcPassword.parameter_variable()).then(|| missing.clone()))
    })
    .await
    .expect("the secrets");
    assert_eq!(
        values.get("FMN_UNSUBSCRIBE_SECRET").map(String::as_str),
        Some("k".repeat(40).as_str())
    );
    assert!(
        !values.contains_key("FMN_IRC_PASSWORD"),
        "optional and absent"
    );

    let err = fetch(&ssm, |k| {
        (k == Secret::UnsubscribeKey.parameter_variable()).then(|| missing.clone())
    })
    .await
    .expect_err("a required secret that is not there");
    assert!(
        err.to_string().contains("FMN_UNSUBSCRIBE_SECRET_PARAMETER"),
        "{err}"
    );

    // Nothing named: nothing fetched (local runs use the plain variables).
    assert!(fetch(&ssm, |_| None).await.unwrap().is_empty());
}
