//! DynamoDB adapter. One item per NAT (`pk` = NAT ID) holds the recording lock, the parked
//! task token and the last stop signal; one counter item per NAT (`pk` = `count#<NAT ID>`)
//! counts the recordings that started. `expires_at` is the table's TTL attribute and is set
//! only while a lock is held.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;

use crate::error::{service_code, RecorderError, Result};
use crate::nat::NatGatewayId;
use crate::ports::{Acquired, LockRequest, Parked, RecordingStore, StopReason, StopSignal};

const CONDITION_FAILED: &str = "ConditionalCheckFailedException";

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

pub fn counter_key(nat_id: &NatGatewayId) -> String {
    format!("count#{nat_id}")
}

type Item = HashMap<String, AttributeValue>;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}
fn get_s<'a>(item: &'a Item, k: &str) -> Option<&'a str> {
    item.get(k).and_then(|v| v.as_s().ok()).map(String::as_str)
}
fn get_n(item: &Item, k: &str) -> Option<i64> {
    item.get(k).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}
fn err<E>(op: &'static str, e: &crate::error::SdkError<E>) -> RecorderError
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    RecorderError::from_sdk("DynamoDB", op, e)
}

/// Another transaction touched one of the items at the same moment: worth a retry.
fn conflict(reasons: &[aws_sdk_dynamodb::types::CancellationReason]) -> Option<RecorderError> {
    reasons
        .iter()
        .any(|r| r.code() == Some("TransactionConflict"))
        .then(|| RecorderError::Transient {
            service: "DynamoDB",
            operation: "TransactWriteItems",
            message: "TransactionConflict".into(),
        })
}

fn stop_reason(item: &Item) -> StopReason {
    match get_s(item, "last_stop_reason") {
        Some("alarm_insufficient_data") => StopReason::AlarmInsufficientData,
        _ => StopReason::AlarmOk,
    }
}

#[async_trait]
impl RecordingStore for DynamoStore {
    async fn acquire(&self, lock: &LockRequest) -> Result<Acquired> {
        let key = s(lock.nat_id.as_str());
        // A retry of the execution that already holds the lock keeps it (and is not counted twice).
        let current = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", key.clone())
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| err("GetItem", &e))?;
        if let Some(item) = current
            .item()
            .filter(|i| get_s(i, "execution") == Some(lock.execution.as_str()))
        {
            return Ok(Acquired::Acquired {
                expires_at_s: get_n(item, "expires_at").unwrap_or(lock.expires_at_s),
            });
        }
        let take = Update::builder()
            .table_name(&self.table)
            .key("pk", key)
            .update_expression("SET execution = :e, alarm_at_ms = :a, expires_at = :x REMOVE #token, flow_log_ids")
            // `released` names the last execution that released the lock: a request of that
            // execution delayed past its own release (a timed-out attempt that still lands)
            // must not take the lock again.
            .condition_expression(
                "(attribute_not_exists(execution) OR execution = :e OR expires_at < :now) \
                 AND (attribute_not_exists(released) OR released <> :e)",
            )
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":e", s(&lock.execution))
            .expression_attribute_values(":a", n(lock.alarm_at_ms))
            .expression_attribute_values(":x", n(lock.expires_at_s))
            .expression_attribute_values(":now", n(lock.now_s))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(|e| RecorderError::Misconfigured(e.to_string()))?;
        let mut tx = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(take).build());
        if lock.max_recordings > 0 {
            let limit = ConditionCheck::builder()
                .table_name(&self.table)
                .key("pk", s(counter_key(&lock.nat_id)))
                .condition_expression("attribute_not_exists(started) OR started < :max")
                .expression_attribute_values(":max", n(lock.max_recordings))
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .build()
                .map_err(|e| RecorderError::Misconfigured(e.to_string()))?;
            tx = tx.transact_items(TransactWriteItem::builder().condition_check(limit).build());
        }
        match tx.send().await {
            Ok(_) => Ok(Acquired::Acquired {
                expires_at_s: lock.expires_at_s,
            }),
            Err(e) => {
                let Some(TransactWriteItemsError::TransactionCanceledException(c)) = e.as_service_error() else {
                    return Err(err("TransactWriteItems", &e));
                };
                let reasons = c.cancellation_reasons();
                let failed = |i: usize| reasons.get(i).and_then(|r| r.code()) == Some("ConditionalCheckFailed");
                if failed(0) {
                    let old = reasons[0].item();
                    let holder = old
                        .and_then(|i| get_s(i, "execution"))
                        .unwrap_or("another execution")
                        .to_string();
                    let holder_alarm = old.and_then(|i| get_n(i, "alarm_at_ms")).unwrap_or(i64::MAX);
                    let last_stop = old.and_then(|i| get_n(i, "last_stop_at_ms")).unwrap_or(i64::MIN);
                    if last_stop > holder_alarm && lock.alarm_at_ms > last_stop {
                        Ok(Acquired::HolderEnding(holder))
                    } else {
                        Ok(Acquired::HeldBy(holder))
                    }
                } else if failed(1) {
                    let count = reasons[1].item().and_then(|i| get_n(i, "started")).unwrap_or(0);
                    Ok(Acquired::LimitReached(count.max(0) as u64))
                } else if let Some(conflict) = conflict(reasons) {
                    Err(conflict)
                } else {
                    Err(err("TransactWriteItems", &e))
                }
            }
        }
    }

    async fn mark_started(&self, nat_id: &NatGatewayId, execution: &str, flow_log_ids: &[String]) -> Result<()> {
        // Counted once per execution: the lock item records the flow logs only if it has none
        // yet, and the counter moves in the same transaction. A retry finds them recorded.
        let record = Update::builder()
            .table_name(&self.table)
            .key("pk", s(nat_id.as_str()))
            .update_expression("SET flow_log_ids = :ids")
            .condition_expression("execution = :e AND attribute_not_exists(flow_log_ids)")
            .expression_attribute_values(":ids", AttributeValue::L(flow_log_ids.iter().map(s).collect()))
            .expression_attribute_values(":e", s(execution))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(|e| RecorderError::Misconfigured(e.to_string()))?;
        let count = Update::builder()
            .table_name(&self.table)
            .key("pk", s(counter_key(nat_id)))
            .update_expression("ADD started :one")
            .expression_attribute_values(":one", n(1))
            .build()
            .map_err(|e| RecorderError::Misconfigured(e.to_string()))?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(record).build())
            .transact_items(TransactWriteItem::builder().update(count).build())
            .send()
            .await;
        let e = match result {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        let Some(TransactWriteItemsError::TransactionCanceledException(c)) = e.as_service_error() else {
            return Err(err("TransactWriteItems", &e));
        };
        let reasons = c.cancellation_reasons();
        if let Some(conflict) = conflict(reasons) {
            return Err(conflict);
        }
        let old = reasons.first().and_then(|r| r.item());
        let holder = old.and_then(|i| get_s(i, "execution"));
        if holder == Some(execution) && old.is_some_and(|i| i.contains_key("flow_log_ids")) {
            return Ok(()); // already counted by an earlier attempt of this execution
        }
        Err(RecorderError::LockLost {
            nat_id: nat_id.to_string(),
            holder: holder.unwrap_or("nobody").to_string(),
        })
    }

    async fn park(&self, nat_id: &NatGatewayId, execution: &str, token: &str) -> Result<Parked> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(nat_id.as_str()))
            .update_expression("SET #token = :t")
            .condition_expression("execution = :e")
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":t", s(token))
            .expression_attribute_values(":e", s(execution))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let item = match result {
            Ok(out) => out.attributes.unwrap_or_default(),
            Err(e) if service_code(&e) == Some(CONDITION_FAILED) => {
                let holder = e
                    .as_service_error()
                    .and_then(|s| match s {
                        aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(
                            c,
                        ) => c.item().and_then(|i| get_s(i, "execution")).map(str::to_string),
                        _ => None,
                    })
                    .unwrap_or_else(|| "nobody".into());
                return Err(RecorderError::LockLost {
                    nat_id: nat_id.to_string(),
                    holder,
                });
            }
            Err(e) => return Err(err("UpdateItem", &e)),
        };
        let alarm_at = get_n(&item, "alarm_at_ms").unwrap_or(i64::MAX);
        match get_n(&item, "last_stop_at_ms") {
            Some(at_ms) if at_ms > alarm_at => Ok(Parked::StopAlreadyRequested(StopSignal {
                reason: stop_reason(&item),
                at_ms,
            })),
            _ => Ok(Parked::Waiting),
        }
    }

    async fn request_stop(&self, nat_id: &NatGatewayId, signal: &StopSignal) -> Result<Option<String>> {
        let reason = match signal.reason {
            StopReason::AlarmOk => "alarm_ok",
            StopReason::AlarmInsufficientData => "alarm_insufficient_data",
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(nat_id.as_str()))
            .update_expression("SET last_stop_at_ms = :t, last_stop_reason = :r")
            .condition_expression("attribute_not_exists(last_stop_at_ms) OR last_stop_at_ms < :t")
            .expression_attribute_values(":t", n(signal.at_ms))
            .expression_attribute_values(":r", s(reason))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        let item = match result {
            Ok(out) => out.attributes.unwrap_or_default(),
            // A newer stop signal is already stored: this one is stale.
            Err(e) if service_code(&e) == Some(CONDITION_FAILED) => return Ok(None),
            Err(e) => return Err(err("UpdateItem", &e)),
        };
        let recording_started_before = get_n(&item, "alarm_at_ms").is_some_and(|a| a < signal.at_ms);
        match (get_s(&item, "execution"), get_s(&item, "token")) {
            (Some(_), Some(token)) if recording_started_before => Ok(Some(token.to_string())),
            _ => Ok(None),
        }
    }

    async fn release(&self, nat_id: &NatGatewayId, execution: &str) -> Result<bool> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(nat_id.as_str()))
            .update_expression("SET released = :e REMOVE execution, #token, flow_log_ids, expires_at, alarm_at_ms")
            .condition_expression("execution = :e")
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":e", s(execution))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if service_code(&e) == Some(CONDITION_FAILED) => Ok(false),
            Err(e) => Err(err("UpdateItem", &e)),
        }
    }

    async fn note_delivery(&self, nat_id: &NatGatewayId, execution: &str, note: &str) -> Result<()> {
        // Not removed by `release`: a finish step retried after it released the lock reads it.
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(nat_id.as_str()))
            .update_expression("SET delivery_note = :n, delivery_execution = :e")
            .expression_attribute_values(":n", s(note))
            .expression_attribute_values(":e", s(execution))
            .send()
            .await
            .map_err(|e| err("UpdateItem", &e))?;
        Ok(())
    }

    async fn noted_delivery(&self, nat_id: &NatGatewayId, execution: &str) -> Result<Option<String>> {
        // Read through a conditional no-op UpdateItem (the value it sets is the one it requires):
        // the finish step needs no other DynamoDB action than the UpdateItem it releases with.
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(nat_id.as_str()))
            .update_expression("SET delivery_execution = :e")
            .condition_expression("delivery_execution = :e")
            .expression_attribute_values(":e", s(execution))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => Ok(out
                .attributes()
                .and_then(|i| get_s(i, "delivery_note"))
                .map(str::to_string)),
            Err(e) if service_code(&e) == Some(CONDITION_FAILED) => Ok(None),
            Err(e) => Err(err("UpdateItem", &e)),
        }
    }

    async fn held_locks(&self) -> Result<Vec<(NatGatewayId, String)>> {
        // One item per NAT: the table is tiny, a filtered scan is the simplest complete answer.
        let mut out = Vec::new();
        let mut pages = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("attribute_exists(execution)")
            .consistent_read(true)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| err("Scan", &e))?;
            for item in page.items() {
                if let (Some(Ok(nat)), Some(execution)) =
                    (get_s(item, "pk").map(NatGatewayId::parse), get_s(item, "execution"))
                {
                    out.push((nat, execution.to_string()));
                }
            }
        }
        Ok(out)
    }
}

/// The query ledger of an execution: one item, `pk` = `queries#<execution ARN>`, holding the
/// string set `query_ids`, `query_execution` and `expires_at` (the table's TTL attribute).
/// Never `execution`: that attribute marks a held lock (`held_locks`).
pub fn ledger_key(execution: &str) -> String {
    format!("{LEDGER_PREFIX}{execution}")
}
const LEDGER_PREFIX: &str = "queries#";

#[async_trait]
impl crate::ports::QueryLedger for DynamoStore {
    async fn record(&self, execution: &str, query_id: &str, expires_at_s: i64) -> Result<()> {
        // ADD to a string set creates it or adds to it, atomically, with no read first (DynamoDB
        // developer guide, "Using update expressions": ADD, DELETE); UpdateItem creates the item
        // if missing (API reference, UpdateItem).
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(ledger_key(execution)))
            .update_expression("SET query_execution = :e, expires_at = :x ADD query_ids :q")
            .expression_attribute_values(":e", s(execution))
            .expression_attribute_values(":x", n(expires_at_s))
            .expression_attribute_values(":q", AttributeValue::Ss(vec![query_id.to_string()]))
            .send()
            .await
            .map_err(|e| err("UpdateItem", &e))?;
        Ok(())
    }

    async fn forget(&self, execution: &str, query_id: &str) -> Result<()> {
        // DELETE takes the ID out of the set (the attribute goes with its last element: DynamoDB
        // supports no empty set, "Supported data types"). The condition keeps UpdateItem from
        // creating an item that holds only the key when the ledger is already gone (TTL).
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(ledger_key(execution)))
            .update_expression("DELETE query_ids :q")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":q", AttributeValue::Ss(vec![query_id.to_string()]))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if service_code(&e) == Some(CONDITION_FAILED) => Ok(()),
            Err(e) => Err(err("UpdateItem", &e)),
        }
    }

    async fn of_execution(&self, execution: &str) -> Result<Vec<String>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(ledger_key(execution)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| err("GetItem", &e))?;
        Ok(out.item().map(ledger_ids).unwrap_or_default())
    }

    async fn all(&self) -> Result<Vec<crate::ports::LedgeredQueries>> {
        // A Scan reads at most 1 MB a call and filters after reading, so a page may hold none and
        // still carry LastEvaluatedKey (API reference, Scan): the paginator follows every page.
        // Expired ledgers still show until TTL deletes them ("Working with expired items"): the
        // sweeper takes them as ended.
        let mut out = Vec::new();
        let mut pages = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("begins_with(pk, :p) AND attribute_exists(query_ids)")
            .expression_attribute_values(":p", s(LEDGER_PREFIX))
            .consistent_read(true)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| err("Scan", &e))?;
            for item in page.items() {
                let ids = ledger_ids(item);
                if let (Some(execution), false) = (get_s(item, "query_execution"), ids.is_empty()) {
                    out.push(crate::ports::LedgeredQueries {
                        execution: execution.to_string(),
                        query_ids: ids,
                        expires_at_s: get_n(item, "expires_at").unwrap_or(i64::MAX),
                    });
                }
            }
        }
        Ok(out)
    }
}

fn ledger_ids(item: &Item) -> Vec<String> {
    let mut ids = item
        .get("query_ids")
        .and_then(|v| v.as_ss().ok())
        .cloned()
        .unwrap_or_default();
    ids.sort();
    ids
}
