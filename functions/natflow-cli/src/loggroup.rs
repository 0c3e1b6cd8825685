//! A log group through the CloudWatch Logs API (FilterLogEvents, paginated): every event's
//! message is one record. Credentials and region come from the usual AWS environment.
//!
//! `--streams` takes interface IDs: CloudWatch Logs delivery names a flow log's streams after the
//! interface and the traffic type, `<interface-id>-all` for TrafficType ALL (VPC user guide,
//! "Publish flow logs to CloudWatch Logs": "a log stream for each network interface"; the names seen
//! are `eni-...-all`, `-accept`, `-reject`), so each given ID is looked up with DescribeLogStreams
//! and a name that matches no stream is an error naming the streams that exist.

use aws_sdk_cloudwatchlogs::config::Region;
use aws_sdk_cloudwatchlogs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cloudwatchlogs::Client;
use indicatif::{ProgressBar, ProgressStyle};
use natflow::Analyzer;

use crate::CliError;

/// The region of the AWS profile in use (AWS_PROFILE, else `default`; AWS_CONFIG_FILE, else
/// ~/.aws/config), and the profile's name. No instance metadata: the region is the user's choice.
pub fn profile_region() -> Option<(String, String)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    use aws_config::meta::region::ProvideRegion;
    let region = rt.block_on(aws_config::profile::ProfileFileRegionProvider::new().region())?;
    let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into());
    Some((region.to_string(), profile))
}

/// The config and credentials files the SDK reads: AWS_CONFIG_FILE, else ~/.aws/config;
/// AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials (SDKs and Tools reference guide, "Location of
/// the shared config and credentials files").
fn profile_files() -> (String, String) {
    let file = |var: &str, default: &str| {
        std::env::var(var)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| default.to_string())
    };
    (
        file("AWS_CONFIG_FILE", "~/.aws/config"),
        file("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"),
    )
}

/// An error when AWS_PROFILE names a profile that neither the config nor the credentials file
/// defines. The SDK's credential chain does not say so: its profile provider reports
/// `ProfileFileError::MissingProfile` as "credentials not loaded" (aws-config,
/// profile/credentials.rs) and the chain moves on to the next provider, ending in "no credentials";
/// the AWS CLI (botocore's ProfileNotFound) refuses such a profile even when the environment holds
/// credentials ("The config profile (nope) could not be found", aws/aws-cli#4626), and so do we,
/// before any call. `default` is not checked: the SDK and the AWS CLI run without one.
pub fn check_profile() -> Result<(), CliError> {
    use aws_types::os_shim_internal::{Env, Fs};
    let Some(name) = std::env::var("AWS_PROFILE").ok().filter(|p| !p.trim().is_empty()) else {
        return Ok(());
    };
    if name == "default" {
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Aws(format!("cannot start the AWS client: {e}")))?;
    let (config, credentials) = profile_files();
    let set = rt
        .block_on(aws_config::profile::load(
            &Fs::real(),
            &Env::real(),
            // The default files: AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE or ~/.aws/.
            &Default::default(),
            None,
        ))
        .map_err(|e| {
            CliError::Aws(format!(
                "AWS_PROFILE {name}: cannot read the AWS config files ({config}, {credentials}): {}",
                root_cause(&e)
            ))
        })?;
    if set.get_profile(&name).is_some() {
        return Ok(());
    }
    let mut known: Vec<&str> = set.profiles().collect();
    known.sort_unstable();
    let exists = |path: &str| {
        let home = std::env::var("HOME").unwrap_or_default();
        match path.strip_prefix("~/") {
            Some(rest) => std::path::Path::new(&home).join(rest).exists(),
            None => std::path::Path::new(path).exists(),
        }
    };
    let known = if known.is_empty() && !exists(&config) && !exists(&credentials) {
        "neither file exists".to_string()
    } else if known.is_empty() {
        "they define no profile".to_string()
    } else {
        format!("their profiles: {}", known.join(", "))
    };
    Err(CliError::Aws(format!(
        "AWS_PROFILE {name:?}: no such profile in {config} or {credentials} ({known}); pick one \
         (aws configure list-profiles), create it (aws configure --profile {name}, or aws configure sso), \
         or unset AWS_PROFILE"
    )))
}

/// The innermost cause of an error, on one line.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut e = e;
    while let Some(s) = e.source() {
        e = s;
    }
    e.to_string().replace('\n', " ")
}

/// An AWS call's failure as one line a user can act on. The codes: CloudWatch Logs API reference,
/// "Common Errors" and each action's Errors (AccessDeniedException, ResourceNotFoundException,
/// ThrottlingException, UnrecognizedClientException; HTTP 400 with the code as `__type`).
fn aws_error<E, R>(op: &str, group: &str, region: &str, e: SdkError<E, R>) -> CliError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + 'static,
{
    let at = format!("{op} on {group} in {region}");
    let chain = format!("{}", aws_sdk_cloudwatchlogs::error::DisplayErrorContext(&e));
    let msg = match &e {
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or("unknown error");
            let text = se.err().message().unwrap_or("").replace('\n', " ");
            match code {
                "ResourceNotFoundException" => format!(
                    "{at}: the log group does not exist in this account and Region ({text}); check the name \
                     (aws logs describe-log-groups --log-group-name-prefix ...), --region and AWS_PROFILE"
                ),
                "AccessDeniedException" | "AccessDenied" => format!(
                    "{at}: access denied ({text}); the identity needs logs:{op} on \
                     arn:aws:logs:{region}:<account>:log-group:{group} (and logs:DescribeLogStreams for --streams)"
                ),
                "ThrottlingException" | "Throttling" | "TooManyRequestsException" | "LimitExceededException" => format!(
                    "{at}: throttled by CloudWatch Logs beyond the SDK's retries ({code}); the quota is shared by \
                     every reader in the account and Region: run again in a minute, or narrow --start/--end or --streams"
                ),
                "UnrecognizedClientException" | "InvalidSignatureException" | "ExpiredTokenException"
                | "InvalidClientTokenId" | "ExpiredToken" | "IncompleteSignature" => format!(
                    "{at}: AWS rejected the credentials ({code}: {text}); renew them (aws sso login, aws configure) \
                     or pick another AWS_PROFILE"
                ),
                _ => format!("{at}: {code}: {text}"),
            }
        }
        SdkError::TimeoutError(_) => {
            format!("{at}: timed out; check the network (proxy, VPN) and run again")
        }
        SdkError::DispatchFailure(d) if d.is_io() || d.is_timeout() => format!(
            "{at}: cannot reach CloudWatch Logs ({}); check the network, proxy or AWS_ENDPOINT_URL",
            root_cause(&e)
        ),
        // The SDK's credential chain found nothing (its message lists every provider it tried).
        _ if chain.contains("credentials") || chain.contains("NoMatchingAuthScheme") => format!(
            "{at}: no AWS credentials found (environment, profile, SSO, web identity, container or instance \
             role); set AWS_PROFILE (then aws sso login if it uses SSO), or AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY"
        ),
        _ => format!("{at}: {}", root_cause(&e)),
    };
    CliError::Aws(msg)
}

/// Epoch seconds, or RFC 3339.
pub fn parse_time(s: &str) -> Result<i64, CliError> {
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp())
        .map_err(|_| {
            CliError::Usage(format!(
                "{s:?} is not a time: give epoch seconds or RFC 3339 (2026-11-28T10:00:00Z)"
            ))
        })
}

/// A flow log's stream of an interface: `<id>-all`, `<id>-accept`, `<id>-reject`, or the name itself.
pub fn stream_matches(wanted: &str, stream: &str) -> bool {
    stream == wanted
        || stream
            .strip_prefix(wanted)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|t| matches!(t, "all" | "accept" | "reject"))
}

/// The interface ID a flow-log stream is named after (`eni-...-all` -> `eni-...`).
pub fn interface_of(stream: &str) -> &str {
    for suffix in ["-all", "-accept", "-reject"] {
        if let Some(id) = stream.strip_suffix(suffix) {
            return id;
        }
    }
    stream
}

/// DescribeLogStreams, paginated (API reference, DescribeLogStreams: up to 50 streams a page,
/// `nextToken` for the rest; "a limit of five transactions per second, after which transactions
/// are throttled"). The pages are paced at 4 per second to stay under that quota (shared with
/// every reader of the account); the SDK's standard retry backs off on a ThrottlingException.
async fn describe_streams(
    client: &Client,
    group: &str,
    region: &str,
    prefix: Option<&str>,
    max: usize,
) -> Result<(Vec<String>, bool), CliError> {
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = client
            .describe_log_streams()
            .log_group_name(group)
            .set_log_stream_name_prefix(prefix.map(str::to_string))
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| aws_error("DescribeLogStreams", group, region, e))?;
        names.extend(
            out.log_streams()
                .iter()
                .filter_map(|s| s.log_stream_name().map(str::to_string)),
        );
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            return Ok((names, false));
        }
        if names.len() >= max {
            return Ok((names, true));
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// The streams the given names select; an error names the streams that exist when one selects none.
async fn resolve_streams(
    client: &Client,
    group: &str,
    region: &str,
    wanted: &[String],
) -> Result<Vec<String>, CliError> {
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for w in wanted {
        let (names, _) = describe_streams(client, group, region, Some(w), usize::MAX).await?;
        let hits: Vec<String> = names.into_iter().filter(|n| stream_matches(w, n)).collect();
        if hits.is_empty() {
            missing.push(w.clone());
        }
        found.extend(hits);
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    if !missing.is_empty() {
        let (existing, more) = describe_streams(client, group, region, None, 50).await?;
        let list = if existing.is_empty() {
            "none: the group holds no stream yet (delivery takes minutes after a flow log starts)".to_string()
        } else {
            format!("{}{}", existing.join(", "), if more { ", ..." } else { "" })
        };
        return Err(CliError::Usage(format!(
            "--streams {} selects no log stream of {group} (a flow log names its streams <interface-id>-all); \
             the group's streams: {list}",
            missing.join(",")
        )));
    }
    found.sort();
    found.dedup();
    Ok(found)
}

#[allow(clippy::too_many_arguments)]
pub fn read(
    mut a: Analyzer,
    group: &str,
    region: &str,
    streams: &[String],
    interfaces: &[String],
    start: i64,
    end: i64,
    progress: bool,
    server_side: bool,
) -> Result<(Analyzer, Option<natflow::report::ServerSide>, Vec<String>), CliError> {
    let (rt, bar) = runtime_and_spinner(progress)?;
    rt.block_on(async {
        let client = client(region).await;
        let selected = if streams.is_empty() {
            vec![]
        } else {
            resolve_streams(&client, group, region, streams).await?
        };
        if !selected.is_empty() {
            // Only the selected interfaces' records count (and any the caller already knew).
            let mut ids: Vec<String> = selected.iter().map(|s| interface_of(s).to_string()).collect();
            ids.extend(interfaces.iter().cloned());
            a.only_interfaces(&ids);
        }
        if server_side {
            let (q, warnings) = crate::insights::read(&client, &mut a, group, region, start, end, &bar).await?;
            bar.finish_and_clear();
            return Ok((a, Some(q), warnings));
        }
        let (mut events, mut bytes) = (0u64, 0u64);
        // FilterLogEvents takes at most 100 stream names a request (API reference,
        // FilterLogEvents: logStreamNames, 1-100 items).
        let chunks: Vec<Option<Vec<String>>> = if selected.is_empty() {
            vec![None]
        } else {
            selected.chunks(100).map(|c| Some(c.to_vec())).collect()
        };
        for names in chunks {
            let mut pages = client
                .filter_log_events()
                .log_group_name(group)
                .start_time(start * 1000)
                .end_time(end * 1000)
                .set_log_stream_names(names)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| aws_error("FilterLogEvents", group, region, e))?;
                for e in page.events() {
                    if let Some(m) = e.message() {
                        a.feed(m.as_bytes());
                        events += 1;
                        bytes += m.len() as u64;
                    }
                }
                bar.set_message(format!("{events} records, {bytes} bytes from {group}"));
                bar.tick();
            }
        }
        bar.finish_and_clear();
        Ok((a, None, vec![]))
    })
}

/// A runtime for the AWS calls of one command, and its spinner (hidden without `progress`).
fn runtime_and_spinner(progress: bool) -> Result<(tokio::runtime::Runtime, ProgressBar), CliError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Aws(format!("cannot start the AWS client: {e}")))?;
    let bar = if progress {
        let b = ProgressBar::new_spinner();
        b.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("valid template"));
        b
    } else {
        ProgressBar::hidden()
    };
    Ok((rt, bar))
}

/// The CloudWatch Logs client: the region resolved as the AWS CLI does (main.rs), credentials
/// from the SDK's chain.
async fn client(region: &str) -> Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .load()
        .await;
    Client::new(&config)
}

/// Route 53 Resolver query logs from a log group (where a query logging configuration delivers
/// to CloudWatch Logs: one query, one JSON object, per event; Route 53 developer guide,
/// resolver-query-logs-format), over `[start, end]` (epoch seconds). FilterLogEvents, paginated
/// by the SDK's paginator (API reference, FilterLogEvents: a page holds up to 1 MB or 10,000
/// events, "a returned page might only be partially full, or even empty" and only a missing
/// `nextToken` ends the pages); its standard retry backs off on a ThrottlingException.
pub fn read_dns(
    group: &str,
    region: &str,
    start: i64,
    end: i64,
    progress: bool,
) -> Result<natflow::dns::DnsIndex, CliError> {
    let (rt, bar) = runtime_and_spinner(progress)?;
    rt.block_on(async {
        let client = client(region).await;
        let mut index = natflow::dns::DnsIndex::new();
        let mut pages = client
            .filter_log_events()
            .log_group_name(group)
            .start_time(start * 1000)
            .end_time(end * 1000)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| aws_error("FilterLogEvents", group, region, e))?;
            for e in page.events() {
                if let Some(m) = e.message() {
                    index.line(m.as_bytes());
                }
            }
            bar.set_message(format!("{} DNS queries from {group}", index.stats().queries));
            bar.tick();
        }
        bar.finish_and_clear();
        Ok(index)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_ids_select_their_flow_log_streams() {
        let id = "eni-0123456789abcdef0";
        assert!(stream_matches(id, "eni-0123456789abcdef0-all"));
        assert!(stream_matches(id, "eni-0123456789abcdef0-accept"));
        assert!(stream_matches("eni-0123456789abcdef0-all", "eni-0123456789abcdef0-all"));
        // A longer ID with the same prefix is another interface.
        assert!(!stream_matches("eni-0123", "eni-0123456789abcdef0-all"));
        assert!(!stream_matches(id, "eni-0123456789abcdef01-all"));
        assert_eq!(interface_of("eni-0123456789abcdef0-all"), id);
        assert_eq!(interface_of(id), id);
    }
}
