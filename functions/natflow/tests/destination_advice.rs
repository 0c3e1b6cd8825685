//! The report's advice for destinations named by the VPC's DNS queries (natflow::destinations):
//! a registry, a package registry, an AWS endpoint by hostname, an unknown host (no advice),
//! exact text and JSON; without DNS input the report has no advice and no class labels.

use std::net::IpAddr;

use natflow::analyze::Analyzer;
use natflow::destinations::Catalogue;
use natflow::dns::DnsIndex;
use natflow::{Format, Inventory, Prices, Report, ReportOptions};

const ENI: &str = "eni-0aaaaaaaaaaaaaaa1";
const NAT_IP: &str = "10.0.0.10";
/// The records' window: 10 minutes.
const T0: u64 = 1_795_860_000;

const INVENTORY: &str = r#"{"interface_id":"eni-0aaaaaaaaaaaaaaa1","private_ips":["10.0.0.10"],"subnet_id":"subnet-0public1","availability_zone_id":"use1-az1","vpc_id":"vpc-0example","interface_type":"nat_gateway","description":"Interface for NAT Gateway nat-0a1b2c3d4e5f60718"}
{"interface_id":"eni-0bbbbbbbbbbbbbbb2","private_ips":["10.0.1.61"],"subnet_id":"subnet-0private1","availability_zone_id":"use1-az1","vpc_id":"vpc-0example","interface_type":"lambda","description":"AWS Lambda VPC ENI-ingest-1b2c3d4e-aaaa-bbbb-cccc-0123456789ab"}
{"interface_id":"eni-0ccccccccccccccc3","private_ips":["10.0.5.12"],"subnet_id":"subnet-0private2","availability_zone_id":"use1-az2","vpc_id":"vpc-0example","instance_id":"i-0123456789abcdef0","tags":{"Name":"builder"}}"#;

fn row(src: &str, dst: &str, psrc: &str, pdst: &str, bytes: u64, start: u64, ssvc: &str, dsvc: &str) -> String {
    format!(
        "9 123456789012 {ENI} {src} {dst} 40000 443 6 10 {bytes} {start} {} ACCEPT OK vpc-0example \
         subnet-0public1 use1-az1 ingress 8 {psrc} {pdst} {ssvc} {dsvc} 19 IPv4 -\n",
        start + 60
    )
}

/// A flow through the NAT as its interface logs it (each direction on both sides).
fn flow(local: &str, remote: &str, up: u64, down: u64, start: u64, svc: &str) -> String {
    [
        row(local, NAT_IP, local, remote, up, start, "-", svc),
        row(NAT_IP, remote, NAT_IP, remote, up, start, "-", svc),
        row(remote, NAT_IP, remote, NAT_IP, down, start, svc, "-"),
        row(NAT_IP, local, remote, local, down, start, svc, "-"),
    ]
    .concat()
}

/// A Route 53 Resolver query-log entry: `src` asked `name`, answered with `ips`.
fn query(src: &str, name: &str, ips: &[&str]) -> String {
    let answers: Vec<String> = ips
        .iter()
        .map(|ip| format!(r#"{{"Rdata":"{ip}","Type":"A","Class":"IN"}}"#))
        .collect();
    format!(
        r#"{{"version":"1.100000","account_id":"123456789012","region":"us-east-1","vpc_id":"vpc-0example","query_timestamp":"2026-11-28T10:00:00Z","query_name":"{name}.","query_type":"A","query_class":"IN","rcode":"NOERROR","answers":[{}],"srcaddr":"{src}","srcport":"53000","transport":"UDP","srcids":{{}}}}"#,
        answers.join(",")
    ) + "\n"
}

fn records(s3_too: bool) -> String {
    let mut r = flow("10.0.1.61", "104.16.1.1", 20_000_000, 3_180_000_000, T0, "-")
        + &flow("10.0.5.12", "151.101.0.223", 5_000_000, 795_000_000, T0 + 60, "-")
        + &flow("10.0.1.61", "52.46.128.5", 400_000_000, 100_000_000, T0 + 120, "-")
        + &flow("10.0.5.12", "203.0.113.9", 100_000_000, 300_000_000, T0 + 540, "-");
    if s3_too {
        r += &flow("10.0.1.61", "52.216.8.9", 1_000_000, 249_000_000, T0 + 300, "S3");
    }
    r
}

fn dns() -> DnsIndex {
    let mut d = DnsIndex::new();
    let lines = query("10.0.1.61", "registry-1.docker.io", &["104.16.1.1"])
        + &query("10.0.5.12", "files.pythonhosted.org", &["151.101.0.223"])
        + &query("10.0.1.61", "sqs.us-east-1.amazonaws.com", &["52.46.128.5"])
        + &query("10.0.5.12", "api.example.com", &["203.0.113.9"])
        + &query("10.0.1.61", "my-bucket.s3.us-east-1.amazonaws.com", &["52.216.8.9"]);
    d.feed(lines.as_bytes());
    d
}

fn report(records: &str, dns: Option<&DnsIndex>, catalogue: Option<&Catalogue>) -> Report {
    let inv = Inventory::from_json(INVENTORY).unwrap();
    let ips: Vec<IpAddr> = vec![NAT_IP.parse().unwrap()];
    let mut a = Analyzer::new(Format::recorder(), &ips).unwrap();
    a.feed(records.as_bytes());
    let mut o = ReportOptions::new(Prices::for_region("us-east-1", None).unwrap());
    o.inventory = Some(&inv);
    o.dns = dns;
    o.destinations = catalogue;
    Report::build(&a, &o)
}

/// The report's section from its heading to the blank line after it.
fn section<'a>(text: &'a str, heading: &str) -> &'a str {
    let i = text.find(heading).unwrap_or_else(|| panic!("no {heading:?} in {text}"));
    let j = text[i..].find("\n\n").map_or(text.len(), |j| i + j + 1);
    &text[i..j]
}

const INTERFACE: &str = "--subnet-ids <one subnet ID per Availability Zone> --security-group-ids <security group allowing TCP 443 from the VPC> --private-dns-enabled";

#[test]
fn registries_and_aws_endpoints_get_advice_and_unknown_hosts_none() {
    let d = dns();
    let r = report(&records(false), Some(&d), None);
    let text = r.to_text();
    // Each destination named with what it is; the unknown host without a class.
    assert_eq!(
        section(&text, "Top talkers"),
        "Top talkers (source -> destination: bytes up/down, share, cost):
  1. Lambda ingest 10.0.1.61 -> registry-1.docker.io (Docker Hub) (104.16.1.1): 3.2 GB (20.0 MB up / 3.2 GB down), 65.3%, $0.13
  2. i-0123456789abcdef0 (builder) 10.0.5.12 -> files.pythonhosted.org (PyPI) (151.101.0.223): 800.0 MB (5.0 MB up / 795.0 MB down), 16.3%, $0.05, cross-AZ
  3. Lambda ingest 10.0.1.61 -> sqs.us-east-1.amazonaws.com (SQS, us-east-1) (52.46.128.5): 500.0 MB (400.0 MB up / 100.0 MB down), 10.2%, $0.02
  4. i-0123456789abcdef0 (builder) 10.0.5.12 -> api.example.com (203.0.113.9): 400.0 MB (100.0 MB up / 300.0 MB down), 8.2%, $0.02, cross-AZ
"
    );
    // us-east-1: NAT $0.045/GB, interface endpoint $0.01/h per zone and $0.01/GB. No month is
    // extrapolated from the spike's rate: the break-even a month is stated instead.
    let want = format!(
        "What to do about the destinations known by name (from the VPC's DNS queries):
     Docker Hub (registry-1.docker.io): 3.2 GB from 1 talker, NAT processing $0.13.
       Pull Docker Hub images through an Amazon ECR pull through cache in us-east-1: the first pull of an image still comes from Docker Hub, later pulls come from ECR, whose layers come from S3 through the free gateway endpoint. Docker Hub requires a Secrets Manager secret whose name starts with ecr-pullthroughcache/. Then pull <account-id>.dkr.ecr.us-east-1.amazonaws.com/docker-hub/<repository>:<tag> (official images: docker-hub/library/<name>). The ecr.api and ecr.dkr interface endpoints cost $14.60 a month in 1 Availability Zone.
         aws secretsmanager create-secret --region us-east-1 --name ecr-pullthroughcache/docker-hub --secret-string '{{\"username\":\"<Docker Hub user>\",\"accessToken\":\"<Docker Hub access token>\"}}'
         aws ecr create-pull-through-cache-rule --region us-east-1 --ecr-repository-prefix docker-hub --upstream-registry-url registry-1.docker.io --credential-arn <ARN of the secret above>
         aws ec2 create-vpc-endpoint --region us-east-1 --vpc-id vpc-0example --service-name com.amazonaws.us-east-1.s3 --route-table-ids <route table IDs>
         aws ec2 describe-vpc-endpoint-services --region us-east-1 --service-names com.amazonaws.us-east-1.ecr.api --query 'ServiceDetails[].AvailabilityZones' --output text
         aws ec2 create-vpc-endpoint --region us-east-1 --vpc-id vpc-0example --vpc-endpoint-type Interface --service-name com.amazonaws.us-east-1.ecr.api {INTERFACE}
         aws ec2 describe-vpc-endpoint-services --region us-east-1 --service-names com.amazonaws.us-east-1.ecr.dkr --query 'ServiceDetails[].AvailabilityZones' --output text
         aws ec2 create-vpc-endpoint --region us-east-1 --vpc-id vpc-0example --vpc-endpoint-type Interface --service-name com.amazonaws.us-east-1.ecr.dkr {INTERFACE}
     PyPI (files.pythonhosted.org): 800.0 MB from 1 talker, NAT processing $0.03.
       Install Python packages through AWS CodeArtifact in us-east-1, with an external connection to PyPI: the first download of a package still comes from PyPI, later ones from CodeArtifact; with the codeartifact.api and codeartifact.repositories interface endpoints (private DNS on) that traffic stays off the NAT (PyPI needs no S3 gateway endpoint). Then point pip at it: aws codeartifact login --tool pip --region us-east-1 --domain <domain> --repository pypi-store. The codeartifact.api and codeartifact.repositories interface endpoints cost $14.60 a month in 1 Availability Zone.
         aws codeartifact create-domain --region us-east-1 --domain <domain>
         aws codeartifact create-repository --region us-east-1 --domain <domain> --repository pypi-store
         aws codeartifact associate-external-connection --region us-east-1 --domain <domain> --repository pypi-store --external-connection public:pypi
         aws ec2 describe-vpc-endpoint-services --region us-east-1 --service-names com.amazonaws.us-east-1.codeartifact.api --query 'ServiceDetails[].AvailabilityZones' --output text
         aws ec2 create-vpc-endpoint --region us-east-1 --vpc-id vpc-0example --vpc-endpoint-type Interface --service-name com.amazonaws.us-east-1.codeartifact.api {INTERFACE}
         aws ec2 describe-vpc-endpoint-services --region us-east-1 --service-names com.amazonaws.us-east-1.codeartifact.repositories --query 'ServiceDetails[].AvailabilityZones' --output text
         aws ec2 create-vpc-endpoint --region us-east-1 --vpc-id vpc-0example --vpc-endpoint-type Interface --service-name com.amazonaws.us-east-1.codeartifact.repositories {INTERFACE}
     SQS (sqs.us-east-1.amazonaws.com): 500.0 MB from 1 talker, NAT processing $0.02.
       An interface VPC endpoint (com.amazonaws.us-east-1.sqs) with private DNS would carry this traffic instead of the NAT. On these 500.0 MB: NAT processing $0.02, through the endpoint < $0.01, saved $0.02. The endpoint costs $0.01 an hour in each Availability Zone it is in (1 zone: $7.30 a month), so it pays for itself above 209 GB a month through it. Private DNS needs the VPC's enableDnsSupport and enableDnsHostnames attributes on.
         aws ec2 describe-vpc-endpoint-services --region us-east-1 --service-names com.amazonaws.us-east-1.sqs --query 'ServiceDetails[].AvailabilityZones' --output text
         aws ec2 create-vpc-endpoint --region us-east-1 --vpc-id vpc-0example --vpc-endpoint-type Interface --service-name com.amazonaws.us-east-1.sqs {INTERFACE}
"
    );
    assert_eq!(section(&text, "What to do about the destinations"), want);
    // Nothing about the unknown host beyond its talker line.
    assert_eq!(
        text.matches("api.example.com").count(),
        1,
        "the talker line only: {text}"
    );
    assert!(!want.contains("example.com"));

    // JSON: one entry per destination, largest first, what the text says in fields.
    let keys: Vec<(&str, &str, &str)> = r
        .destination_advice
        .iter()
        .map(|a| (a.class.as_str(), a.key.as_str(), a.name.as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            ("container-registry", "docker-hub", "Docker Hub"),
            ("package-registry", "pypi", "PyPI"),
            ("aws-endpoint", "sqs", "SQS")
        ]
    );
    let sqs = &r.destination_advice[2];
    assert_eq!(sqs.endpoints, ["com.amazonaws.us-east-1.sqs"]);
    assert_eq!((sqs.azs, sqs.endpoint_monthly_usd), (1, 7.3));
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["destination_advice"][1]["hosts"][0], "files.pythonhosted.org");
    let back: Report = serde_json::from_value(json).unwrap();
    assert_eq!(back.destination_advice, r.destination_advice);
}

/// S3 found by pkt-dst-aws-service has its gateway advice in the services section: no second
/// piece of advice for the bucket's hostname, and the registry's S3 command is left there too.
#[test]
fn a_service_the_services_section_advises_is_advised_once() {
    let d = dns();
    let r = report(&records(true), Some(&d), None);
    let text = r.to_text();
    assert!(
        text.contains("-> my-bucket.s3.us-east-1.amazonaws.com (S3, us-east-1) (S3 52.216.8.9)"),
        "{text}"
    );
    assert!(
        text.contains("     S3: 250.0 MB, NAT processing $0.01; a gateway VPC endpoint for S3 is free"),
        "{text}"
    );
    let names: Vec<&str> = r.destination_advice.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["Docker Hub", "PyPI", "SQS"]);
    let advice = section(&text, "What to do about the destinations");
    assert_eq!(advice.matches("com.amazonaws.us-east-1.s3 ").count(), 0, "{advice}");
    assert!(
        advice.contains(
            "docker-hub/library/<name>). For the S3 gateway endpoint, see \"AWS services reached through the NAT\". The ecr.api"
        ),
        "{advice}"
    );
}

/// Without DNS input: no class in the labels, no advice section, no JSON key (the report as
/// before this feature).
#[test]
fn without_dns_the_report_has_no_destination_advice() {
    let r = report(&records(false), None, None);
    let text = r.to_text();
    assert!(r.destination_advice.is_empty());
    assert!(
        !text.contains("What to do about") && !text.contains("Docker Hub"),
        "{text}"
    );
    assert!(text.contains("-> 104.16.1.1: 3.2 GB"), "{text}");
    assert!(serde_json::to_value(&r).unwrap().get("destination_advice").is_none());
}

/// The catalogue given replaces the built-in one: an entry removed gives neither a class nor
/// advice, an entry added gives both.
#[test]
fn an_override_catalogue_is_used() {
    let c = Catalogue::load(Some(
        r#"{"destinations": {"docker-hub": null, "example": {"name": "Example mirror", "class": "package-registry",
            "patterns": ["example.com"], "advice": "Mirror it in {region} ({vpc_id}).", "sources": ["test"]}}}"#,
    ))
    .unwrap();
    let d = dns();
    let r = report(&records(false), Some(&d), Some(&c));
    let text = r.to_text();
    assert!(text.contains("-> registry-1.docker.io (104.16.1.1): 3.2 GB"), "{text}");
    assert!(
        text.contains("-> api.example.com (Example mirror) (203.0.113.9)"),
        "{text}"
    );
    let names: Vec<&str> = r.destination_advice.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["PyPI", "SQS", "Example mirror"]);
    assert!(
        text.contains(
            "     Example mirror (api.example.com): 400.0 MB from 1 talker, NAT processing $0.02.
       Mirror it in us-east-1 (vpc-0example).
"
        ),
        "{text}"
    );
}
