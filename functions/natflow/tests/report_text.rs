//! The report as a reader meets it: plain words, service names as AWS writes them, amounts as a
//! bill shows them, the cost line worded for what was read, `top 0`, and the JSON's key names.

use natflow::analyze::Analyzer;
use natflow::report::SCHEMA_VERSION;
use natflow::synth::{Scenario, Writer};
use natflow::{Format, Inventory, Prices, Report, ReportOptions};

fn analyzed(seed: u64) -> (Scenario, Analyzer) {
    let scenario = Scenario::new(12, 10);
    let mut buf = Vec::new();
    {
        let mut w = Writer::new(&mut buf, &scenario, seed);
        w.fill(400_000).unwrap();
    }
    let mut a = Analyzer::new(Format::recorder(), &[]).unwrap();
    a.feed(&buf);
    (scenario, a)
}

fn report(a: &Analyzer, inv: &Inventory, top: usize, transitions: Option<u32>) -> Report {
    let mut o = ReportOptions::new(Prices::for_region("us-east-1", None).unwrap());
    o.inventory = Some(inv);
    o.top = top;
    o.state_transitions = transitions;
    Report::build(a, &o)
}

#[test]
fn top_zero_lists_no_talkers_and_does_not_say_no_traffic() {
    let (scenario, a) = analyzed(3);
    let inv = Inventory::new(scenario.inventory());
    let r = report(&a, &inv, 0, None);
    assert!(r.bytes > 0 && r.talkers.is_empty());
    let text = r.to_text();
    assert!(!text.contains("No traffic"), "{text}");
    assert!(
        text.contains(&format!(
            "Talkers: none listed (the report was asked for the top 0); {} talkers sent",
            r.distinct_talkers
        )),
        "{text}"
    );
    // Everything is in "others", with the same key names as the totals.
    assert_eq!(r.others.talkers, r.distinct_talkers);
    assert_eq!(r.others.bytes, r.bytes);
    assert_eq!(
        (r.others.upload_bytes, r.others.download_bytes),
        (r.upload_bytes, r.download_bytes)
    );
}

#[test]
fn text_has_no_jargon_and_names_services_as_aws_writes_them() {
    let (scenario, a) = analyzed(11);
    let inv = Inventory::new(scenario.inventory());
    let r = report(&a, &inv, usize::MAX, None);
    assert!(
        r.services.iter().any(|s| s.service == "DYNAMODB"),
        "the scenario reaches DynamoDB"
    );
    let text = r.to_text();
    assert!(!text.contains("DYNAMODB"), "{text}");
    assert!(text.contains("     DynamoDB: "), "{text}");
    assert!(text.contains("a gateway VPC endpoint for DynamoDB is free"), "{text}");
    assert!(text.contains(" -> DynamoDB "), "talker labels too: {text}");
    assert!(!text.contains("halves"), "{text}");
    assert!(
        text.contains("not counted (the NAT's own copy of a flow already counted"),
        "{text}"
    );
    // Amounts under a cent read "< $0.01", never "$0.0000".
    assert!(!text.contains("$0.00 ") && !text.contains("$0.0000"), "{text}");
}

#[test]
fn only_the_recorder_calls_the_ingestion_cost_its_own() {
    let (scenario, a) = analyzed(5);
    let inv = Inventory::new(scenario.inventory());
    let offline = report(&a, &inv, 10, None).to_text();
    assert!(!offline.contains("recording"), "{offline}");
    assert!(
        offline.contains("Cost of these records as flow logs: ") && offline.contains(" into CloudWatch Logs."),
        "{offline}"
    );
    let recorded = report(&a, &inv, 10, Some(8)).to_text();
    assert!(
        recorded.contains("This recording's own cost: ")
            && recorded.contains(" of flow-log ingestion (")
            && recorded.contains(" of Step Functions."),
        "{recorded}"
    );
}

#[test]
fn json_carries_its_schema_version_and_upload_bytes_everywhere() {
    let (scenario, a) = analyzed(7);
    let inv = Inventory::new(scenario.inventory());
    let v = serde_json::to_value(report(&a, &inv, 2, None)).unwrap();
    assert_eq!(v["schema_version"], SCHEMA_VERSION);
    assert!(v["others"]["upload_bytes"].as_u64().unwrap() > 0, "{}", v["others"]);
    // No key anywhere is a bare `upload`/`download`.
    fn keys(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    out.push(k.clone());
                    keys(x, out);
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| keys(x, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    keys(&v, &mut all);
    assert!(!all.iter().any(|k| k == "upload" || k == "download"), "{all:?}");
    // And it reads back.
    let back: Report = serde_json::from_value(v).unwrap();
    assert_eq!(back.schema_version, SCHEMA_VERSION);
}
